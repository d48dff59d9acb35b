import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Infra } from '../../compose.js';

/** Liveness, readiness and metrics: unauthenticated, for load balancers and Prometheus. */
export async function opsRoutes(app: FastifyInstance, { infra }: { infra: Infra }) {
  app.get(
    '/healthz',
    {
      schema: {
        tags: ['operations'],
        security: [],
        response: { 200: z.object({ status: z.literal('ok') }) },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get('/readyz', { schema: { tags: ['operations'], security: [] } }, async (_req, reply) => {
    const results = await Promise.all(
      Object.entries(infra.checks).map(async ([name, check]) => {
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
  });

  app.get('/metrics', { schema: { tags: ['operations'], security: [], hide: true } }, async (_req, reply) => {
    reply.header('content-type', infra.metrics.registry.contentType);
    return infra.metrics.registry.metrics();
  });
}
