import type { Infra } from './compose.js';
import { createAuthService } from './modules/auth/auth.service.js';
import { createCheckoutService } from './modules/checkout/checkout.service.js';
import { createIdempotencyService } from './modules/idempotency/idempotency.service.js';
import { createNotificationsService } from './modules/notifications/notifications.service.js';
import { createOrdersService } from './modules/orders/orders.service.js';
import { createRefundsService } from './modules/refunds/refunds.service.js';
import { noCommissionHooks } from './modules/webhooks/webhooks.commissions.js';
import { createWebhooksService } from './modules/webhooks/webhooks.service.js';

/**
 * Every module's service, built once from the infrastructure: the HTTP app and the workers share them.
 * Modules receive what they use explicitly; there is no container.
 */
export function createServices(infra: Infra) {
  const orders = createOrdersService();
  return {
    db: infra.db,
    auth: createAuthService(infra.db),
    orders,
    idempotency: createIdempotencyService(infra.db),
    checkout: createCheckoutService({ db: infra.db, stripe: infra.stripe, orders, config: infra.config }),
    refunds: createRefundsService({ db: infra.db, stripe: infra.stripe, orders }),
    notifications: createNotificationsService(infra),
    // The referral program replaces the no-op commission hooks.
    webhooks: createWebhooksService({
      infra,
      orders,
      commissions: noCommissionHooks,
      log: infra.log,
    }),
  };
}

export type Services = ReturnType<typeof createServices>;
