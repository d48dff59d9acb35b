import cookie from '@fastify/cookie';
import formbody from '@fastify/formbody';
import type { FastifyInstance } from 'fastify';
import { hideFromApiDocs } from '../../shared/html.js';
import { defineModule } from '../module.js';
import { type StorefrontDeps, storefrontRoutes } from './storefront.routes.js';

/**
 * The storefront demo (CONTRACT §3 `GET /`): served only with the embedded defaults (no DATABASE_URL, no
 * STRIPE_SECRET_KEY, not production). It calls the checkout module as a shop's server would, with its own
 * trusted price list, honours the `/r/:code` attribution cookie, and shows the order's status as the webhook
 * set it. `storefront.seed.ts` fills the demo with affiliates and referred orders through the real paths.
 * Owns no table.
 */
export { type DemoKeys, prepareDemo, type SeedDeps } from './storefront.seed.js';

export function createStorefrontModule(deps: StorefrontDeps & { enabled: boolean }) {
  return defineModule({
    name: 'storefront',
    routes: deps.enabled
      ? async (app: FastifyInstance) => {
          hideFromApiDocs(app);
          await app.register(formbody, { bodyLimit: 4 * 1024 });
          await app.register(cookie);
          await app.register(storefrontRoutes(deps));
        }
      : undefined,
  });
}
