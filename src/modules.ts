import type { Command } from 'commander';
import type { Infra } from './compose.js';
import type { Worker } from './jobs/index.js';
import { createAuditModule, registerAuditCommands, type WithAudit } from './modules/audit/index.js';
import { authenticate, createAuthModule, principalOfKey } from './modules/auth/index.js';
import { createCheckoutModule } from './modules/checkout/index.js';
import { createDashboardModule } from './modules/dashboard/index.js';
import { createIdempotencyModule } from './modules/idempotency/index.js';
import type { ServiceModule } from './modules/module.js';
import { createNotificationsModule } from './modules/notifications/index.js';
import { createOpsModule } from './modules/ops/index.js';
import { createOrdersModule, getOrder } from './modules/orders/index.js';
import { createPaymentsModule, type PaymentFactSubscriber } from './modules/payments/index.js';
import { createRateLimitsModule } from './modules/rate-limits/index.js';
import { ATTRIBUTION_COOKIE, createReferralsModule, resolveCode } from './modules/referrals/index.js';
import { createStorefrontModule } from './modules/storefront/index.js';
import { createStripeCallsModule, type PhaseHooks } from './modules/stripe-calls/index.js';
import {
  createStripeEventsModule,
  type EventApplier,
  type InboxOptions,
  type ReconcileSchedule,
  registerEventsCommands,
  type WithEvents,
} from './modules/stripe-events/index.js';

/**
 * The one list of modules. Each is built here from only the dependencies it needs; the app takes their hooks
 * and routes, `serve` and `worker` their workers, and the CLI their commands from this file alone. Adding a
 * module (the referral programme, say) means a `create…Module` call below, its entry in `list`, and, if it
 * has commands, a line in `registerModuleCommands`. docs/architecture.md shows where everything else goes.
 */

/** What tests and `npm run bench` may change in how the modules are built; production passes none. */
export interface ModuleOptions {
  /** Who hears of each payment fact, besides the modules below (tests subscribe to watch the seam). */
  factSubscribers?: readonly PaymentFactSubscriber[];
  stripeEvents?: Partial<InboxOptions>;
  reconcileSchedule?: ReconcileSchedule;
  /** How often each instance asks whether a periodic job is due. */
  periodicCheckMs?: number;
  checkoutHooks?: PhaseHooks;
  /** The referral programme's clock (holds, approvals, payouts). */
  now?: () => Date;
}

/** The referral programme and the audit log its decisions are written to. */
function referralModules(infra: Infra, options: ModuleOptions) {
  const { db, config } = infra;
  const audit = createAuditModule({ db });
  const referrals = createReferralsModule({
    db,
    audit: audit.log,
    ipSalt: infra.referralIpSalt,
    holdDays: config.commissionHoldDays,
    fraud: config.fraud,
    storefrontUrl: config.storefrontUrl,
    ...(options.now ? { now: options.now } : {}),
    ...(options.periodicCheckMs ? { periodicCheckMs: options.periodicCheckMs } : {}),
  });
  return { audit, referrals };
}

/** The Stripe event inbox, applying events through the payments domain. */
function stripeEventsModule(infra: Infra, options: ModuleOptions, applier: EventApplier) {
  const { config } = infra;
  return createStripeEventsModule({
    db: infra.db,
    lock: infra.lock,
    kv: infra.kv,
    stripe: infra.stripe,
    registry: infra.registry,
    log: infra.log,
    applier,
    webhookSecrets: infra.webhookSecrets,
    toleranceSeconds: config.webhookToleranceSeconds,
    // Events from the other mode are someone else's: a live key never acts on test events and vice versa.
    livemode: /^(sk|rk)_live_/.test(config.stripeSecretKey ?? ''),
    ...(options.stripeEvents ? { options: options.stripeEvents } : {}),
    ...(options.reconcileSchedule ? { reconcileSchedule: options.reconcileSchedule } : {}),
    ...(options.periodicCheckMs ? { periodicCheckMs: options.periodicCheckMs } : {}),
  });
}

/** The dashboard and the storefront demo: readers and forms over the other modules' own functions. */
function demoAndDashboard(
  infra: Infra,
  m: Pick<Modules, 'audit' | 'referrals' | 'checkout' | 'payments' | 'notifications' | 'stripeEvents'>,
) {
  const { db, config } = infra;
  const storefront = createStorefrontModule({
    enabled: isDemo(config),
    publicUrl: config.publicUrl,
    attributionCookie: ATTRIBUTION_COOKIE,
    checkoutOrigin: infra.emulator ? new URL(infra.emulator.url).origin : 'https://checkout.stripe.com',
    createSession: m.checkout.createSession,
    orderStatus: async (id) => (await getOrder(db, id))?.status ?? null,
  });
  const dashboard = createDashboardModule({
    publicUrl: config.publicUrl,
    secret: infra.dashboardSecret,
    services: {
      db,
      authenticate: (key) => authenticate(db, key),
      principalOfKey: (keyId) => principalOfKey(db, keyId),
      referrals: m.referrals,
      createRefund: m.payments.createRefund,
      listEvents: m.stripeEvents.listEvents,
      replayEvent: m.stripeEvents.replayEvent,
      outboxBacklog: m.notifications.backlog,
      verifyAudit: m.audit.verify,
    },
  });
  return { storefront, dashboard };
}

export function createModules(infra: Infra, options: ModuleOptions = {}) {
  const { db, stripe, config, registry } = infra;
  const auth = createAuthModule({ db });
  const idempotency = createIdempotencyModule({ db });
  const ops = createOpsModule({ checks: infra.checks, registry });
  const rateLimits = createRateLimitsModule({
    limits: config.rateLimits,
    redis: infra.redis,
    keyPrefix: infra.redisKeyPrefix,
  });
  const notifications = createNotificationsModule({ db, registry, ordersWebhook: config.ordersWebhook });
  const orders = createOrdersModule({ db });
  const { audit, referrals } = referralModules(infra, options);
  const checkout = createCheckoutModule({
    db,
    stripe,
    publicUrl: config.publicUrl,
    resolveReferral: resolveCode,
    ...(options.checkoutHooks ? { hooks: options.checkoutHooks } : {}),
  });
  const payments = createPaymentsModule({
    db,
    stripe,
    subscribers: [referrals.ledger, ...(options.factSubscribers ?? [])],
    // The fraud guards judge referred orders by their card and risk level; other orders need no lookup.
    wantsEvidence: (order) =>
      order.referral_affiliate_id !== null || (options.factSubscribers?.length ?? 0) > 0,
  });
  const stripeCalls = createStripeCallsModule({
    db,
    specs: { checkout_session: checkout.callSpec, refund: payments.refundCallSpec },
  });
  const stripeEvents = stripeEventsModule(infra, options, payments.applier);
  const { storefront, dashboard } = demoAndDashboard(infra, {
    audit,
    referrals,
    checkout,
    payments,
    notifications,
    stripeEvents,
  });
  // Hooks first (rate limits, authentication, then Idempotency-Key), then every module's routes, in this order.
  const list: ServiceModule[] = [
    rateLimits,
    auth,
    idempotency,
    ops,
    orders,
    stripeEvents,
    checkout,
    payments,
    notifications,
    stripeCalls,
    audit,
    referrals,
    dashboard,
    storefront,
  ];
  return {
    auth,
    audit,
    idempotency,
    ops,
    notifications,
    orders,
    checkout,
    payments,
    stripeCalls,
    stripeEvents,
    referrals,
    dashboard,
    storefront,
    list,
  };
}

export type Modules = ReturnType<typeof createModules>;

/**
 * Demo mode (CONTRACT §1 `npm start`): the embedded defaults only — PGlite, the embedded emulator, not
 * production. Only then is the storefront served and demo data seeded.
 */
export const isDemo = (config: Infra['config']) =>
  config.nodeEnv !== 'production' && config.embeddedEmulator && !config.databaseUrl;

/** Every module's background work, for `serve` and `worker`. */
export const moduleWorkers = (modules: Modules): Worker[] => modules.list.flatMap((m) => m.workers?.() ?? []);

/** Opens the dependencies and the modules for one command, runs `use`, and closes them again. */
export type OpenModules = <T>(
  use: (modules: Modules) => Promise<T>,
  opts?: { needsStripe?: boolean },
) => Promise<T>;

/** The modules' own sub-commands. */
export function registerModuleCommands(program: Command, open: OpenModules): void {
  const withEvents: WithEvents = (use, opts) => open((m) => use(m.stripeEvents), opts);
  registerEventsCommands(program, withEvents);
  const withAudit: WithAudit = (use) => open((m) => use(m.audit));
  registerAuditCommands(program, withAudit);
}
