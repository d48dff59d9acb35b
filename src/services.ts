import type { Infra } from './compose.js';
import { createAuthService } from './modules/auth/auth.service.js';
import { createOrdersService } from './modules/orders/orders.service.js';

/**
 * Every module's service, built once from the infrastructure: the HTTP app and the workers share them.
 * Modules receive what they use explicitly; there is no container.
 */
export function createServices(infra: Infra) {
  return {
    db: infra.db,
    auth: createAuthService(infra.db),
    orders: createOrdersService(),
  };
}

export type Services = ReturnType<typeof createServices>;
