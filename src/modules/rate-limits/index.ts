import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { defineModule } from '../module.js';
import { type RateLimits, rateLimitPlugin } from './rate-limits.plugin.js';

/** Rate limits per API key, per client address and for Stripe's webhook deliveries. Owns no table. */
export type { RateLimits } from './rate-limits.plugin.js';

export function createRateLimitsModule(deps: {
  limits: RateLimits;
  redis: Redis | undefined;
  keyPrefix: string;
}) {
  return defineModule({
    name: 'rate-limits',
    plugin: async (app: FastifyInstance) => {
      await app.register(rateLimitPlugin, deps);
    },
  });
}
