import rateLimit, { normalizeIP } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { Redis } from 'ioredis';
import { AppError } from '../../shared/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The bucket a route's traffic is counted in: `webhook` (Stripe's deliveries, apart from everything else so
     * that other traffic never starves them) or `none` (the probes, which must answer whatever the load).
     * Unset: the client address's bucket, and the API key's once the route's role check has run.
     */
    rateBucket?: 'webhook' | 'none';
  }
}

/** Requests allowed per client in each window (CONTRACT §3: 429 `rate_limited` with `Retry-After`). */
export interface RateLimits {
  /** Per API key, on the routes that take one. */
  perKey: number;
  /** Per client address, on every route but the probes and the webhook. */
  perAddress: number;
  /** Per client address on `POST /webhooks/stripe`. */
  webhook: number;
  windowMs: number;
}

type Check = ReturnType<FastifyInstance['createRateLimit']>;

/** Counts the request in its bucket; over the limit, 429 with how long until the window ends. */
async function enforce(check: Check, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const limit = await check(req);
  if (limit.isAllowed || !limit.isExceeded) return;
  const seconds = Math.max(1, limit.ttlInSeconds);
  reply.header('retry-after', String(seconds));
  throw new AppError(429, 'rate_limited', `too many requests; retry in ${seconds} s`, {
    details: { limit: limit.max, window_seconds: Math.round(limit.timeWindow / 1000) },
  });
}

// IPv6 clients usually hold a whole /64: counted per address, one client could spread over 2^64 buckets.
const address = (req: FastifyRequest) => normalizeIP(req.ip, 64);

/**
 * Rate limits with `@fastify/rate-limit`: in Redis when the service has one (so every instance counts the same
 * window; a Redis outage lets requests through rather than refusing them), in process otherwise. Each client
 * address has a bucket, the webhook route a bucket of its own per address, and each API key one more,
 * counted right after the route's role check authenticated it, before its body is read.
 */
export const rateLimitPlugin = fp(
  async (app: FastifyInstance, opts: { limits: RateLimits; redis: Redis | undefined; keyPrefix: string }) => {
    await app.register(rateLimit, {
      global: false,
      timeWindow: opts.limits.windowMs,
      skipOnError: true,
      nameSpace: `${opts.keyPrefix}rate:`,
      ...(opts.redis ? { redis: opts.redis } : {}),
    });
    const byAddress = app.createRateLimit({
      max: opts.limits.perAddress,
      keyGenerator: (req) => `address:${address(req)}`,
    });
    const webhook = app.createRateLimit({
      max: opts.limits.webhook,
      keyGenerator: (req) => `webhook:${address(req)}`,
    });
    const byKey = app.createRateLimit({
      max: opts.limits.perKey,
      keyGenerator: (req) => `key:${req.principal?.keyId}`,
    });

    app.addHook('onRequest', async (req, reply) => {
      const bucket = req.routeOptions.config.rateBucket;
      if (bucket === 'none') return;
      await enforce(bucket === 'webhook' ? webhook : byAddress, req, reply);
    });
    const limitByKey = async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.principal) await enforce(byKey, req, reply);
    };
    app.addHook('onRoute', (route: RouteOptions) => {
      const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
      route.onRequest = [...own, limitByKey];
    });
  },
);
