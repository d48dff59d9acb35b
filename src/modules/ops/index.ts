import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import { defineModule } from '../module.js';

export interface OpsDeps {
  /** Readiness probes by name; each resolves when its dependency answers. */
  checks: Record<string, () => Promise<unknown>>;
  registry: Registry;
}

/** Liveness, readiness and metrics: unauthenticated, for load balancers and Prometheus. */
export function createOpsModule(deps: OpsDeps) {
  return defineModule({ name: 'ops', routes: (app: FastifyInstance) => opsRoutes(app, deps) });
}

/** Probes and scrapes answer whatever the load: never rate limited. */
const PROBE = { rateBucket: 'none' as const };

async function opsRoutes(app: FastifyInstance, deps: OpsDeps) {
  app.get(
    '/healthz',
    {
      config: PROBE,
      schema: {
        tags: ['operations'],
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    { config: PROBE, schema: { tags: ['operations'], security: [] } },
    async (_req, reply) => {
      const results = await Promise.all(
        Object.entries(deps.checks).map(async ([name, check]) => {
          try {
            // A dependency that hangs is as unready as one that refuses.
            await Promise.race([
              check(),
              new Promise((_, fail) => setTimeout(() => fail(new Error('timeout')), 2000)),
            ]);
            return [name, 'ok'] as const;
          } catch {
            return [name, 'unavailable'] as const;
          }
        }),
      );
      const checks = Object.fromEntries(results);
      const ok = results.every(([, status]) => status === 'ok');
      if (!ok) reply.code(503).header('retry-after', '5');
      return { status: ok ? 'ok' : 'unavailable', checks };
    },
  );

  const metrics = { config: PROBE, schema: { tags: ['operations'], security: [], hide: true } };
  app.get('/metrics', metrics, async (_req, reply) => {
    reply.header('content-type', deps.registry.contentType);
    return deps.registry.metrics();
  });
}
