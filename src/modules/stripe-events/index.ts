import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type Stripe from 'stripe';
import { periodicWorker, queueWorker } from '../../jobs/index.js';
import type { Db, Queryable } from '../../ports/db.js';
import type { Kv } from '../../ports/kv.js';
import type { Lock } from '../../ports/lock.js';
import { defineModule } from '../module.js';
import type { EventApplier } from './stripe-events.applier.js';
import { handleWebhookEvent, refuseUnverifiableHeader } from './stripe-events.delivery.js';
import type { StripeEvent } from './stripe-events.envelope.js';
import { createWebhookIdempotencyService, LOCK_TIMEOUT_SECONDS } from './stripe-events.idempotency.js';
import {
  applyClaimed,
  type ClaimedEvent,
  type InboxContext,
  type InboxOptions,
  processEvent,
  recordEvent,
} from './stripe-events.inbox.js';
import { stripeEventsMetrics } from './stripe-events.metrics.js';
import { type ReconcileSchedule, reconcile, reconciliationJob } from './stripe-events.reconcile.js';
import { listEvents, replayEvent } from './stripe-events.replay.js';
import { webhookRoutes } from './stripe-events.routes.js';
import {
  countByStatus,
  INBOX_QUEUE,
  INBOX_STATUSES,
  type InboxStatus,
  wakeDeferred,
} from './stripe-events.sql.js';

/**
 * The Stripe event inbox (DESIGN §3): verify a delivery's signature over its raw bytes, record the event before
 * acknowledging it, apply it exactly once through the seed's WebhookIdempotencyService (PostgreSQL decides),
 * retry and dead-letter what cannot be applied yet, replay, and reconcile with Stripe's own list of events.
 * What an event means is not decided here: the `EventApplier` (the payments module) does that. Owns
 * `stripe_events`.
 */
export type {
  AppliedOutcome,
  ApplyStep,
  EventApplier,
  InboxEvent,
  Resolution,
} from './stripe-events.applier.js';
export { registerEventsCommands, type WithEvents } from './stripe-events.cli.js';
export type { DeliveryAnswer, DeliveryStatus } from './stripe-events.delivery.js';
export { type StripeEvent, StripeEventSchema } from './stripe-events.envelope.js';
export {
  EVENT_EXPIRY_DAYS,
  type IdempotentOutcome,
  LOCK_TIMEOUT_SECONDS,
  type ProcessResult,
  type WebhookIdempotencyService,
} from './stripe-events.idempotency.js';
export type { InboxOptions } from './stripe-events.inbox.js';
export type { ReconcileSchedule, ReconcileSummary } from './stripe-events.reconcile.js';
export type { InboxStatus } from './stripe-events.sql.js';

/** Makes the events deferred on an order due now, in the caller's transaction: the order moved. */
export async function wakeEventsWaitingOn(q: Queryable, orderId: string): Promise<void> {
  await q.query(wakeDeferred(orderId));
}

export const DEFAULT_RETRY: InboxOptions['retry'] = {
  jitter: 'equal',
  // A failure from a brief database hiccup or a Stripe lookup usually clears in seconds.
  baseMs: 10_000,
  // Events waiting on another event are woken the moment their order moves, not by this timer, so a long cap
  // costs them nothing; it only spaces out retries of something that keeps failing.
  capMs: 4 * 60 * 60_000,
  // 23 tries span at least 25 hours (about 50 at most): longer than any gap in which reconciliation (every few
  // minutes) or Stripe's own retries would bring what a deferred event waits for, and long enough to ride out
  // a bad deploy. An event still not applicable after that needs a person, so it becomes a dead letter that
  // `events list --status failed` shows and `events replay` retries.
  maxAttempts: 23,
};

/** Events per claim: small enough that one batch finishes well within the claim's lease. */
const RETRY_BATCH = 20;
// With nothing due, a second's pause costs nothing and keeps a retry at most a second late.
const RETRY_IDLE_MS = 1_000;

export interface StripeEventsDeps {
  db: Db;
  lock: Lock;
  kv: Kv;
  stripe: Stripe;
  registry: Registry;
  log: Logger;
  applier: EventApplier;
  /** Every accepted signing secret; more than one while a secret is being rotated. */
  webhookSecrets: readonly string[];
  toleranceSeconds: number;
  /** The configured Stripe key is a live one: only live-mode events are applied (else only test-mode ones). */
  livemode: boolean;
  options?: Partial<InboxOptions>;
  reconcileSchedule?: ReconcileSchedule;
  /** How often each instance asks whether the reconciliation is due (tests ask more often). */
  periodicCheckMs?: number;
}

function inboxContext(deps: StripeEventsDeps): InboxContext {
  const options: InboxOptions = {
    lockTimeoutMs: LOCK_TIMEOUT_SECONDS * 1000,
    retry: DEFAULT_RETRY,
    firstTryLeaseMs: LOCK_TIMEOUT_SECONDS * 1000,
    nowSeconds: () => Math.floor(Date.now() / 1000),
    ...deps.options,
  };
  const metrics = stripeEventsMetrics(deps.registry);
  const idempotency = createWebhookIdempotencyService({
    db: deps.db,
    lock: deps.lock,
    kv: deps.kv,
    metrics,
    log: deps.log,
    lockTimeoutMs: options.lockTimeoutMs,
  });
  return {
    db: deps.db,
    applier: deps.applier,
    idempotency,
    metrics,
    log: deps.log,
    options,
    expectedLivemode: deps.livemode,
  };
}

export function createStripeEventsModule(deps: StripeEventsDeps) {
  const ctx = inboxContext(deps);
  const delivery = { ...ctx, webhookSecrets: deps.webhookSecrets, toleranceSeconds: deps.toleranceSeconds };
  ctx.metrics.inboxEvents.collectWith(async () => {
    const { rows } = await deps.db.query<{ status: string; n: number }>(countByStatus());
    return Object.fromEntries(INBOX_STATUSES.map((s) => [s, rows.find((r) => r.status === s)?.n ?? 0]));
  });
  const handle = (payload: Buffer, sigHeader: string) => handleWebhookEvent(delivery, payload, sigHeader);
  const retries = queueWorker<ClaimedEvent>({
    name: 'webhook-retries',
    db: deps.db,
    queue: INBOX_QUEUE,
    policy: ctx.options.retry,
    batchSize: RETRY_BATCH,
    leaseMs: ctx.options.lockTimeoutMs * 2,
    idleMs: RETRY_IDLE_MS,
    keyOf: (event) => event.id,
    run: async (event) => {
      await applyClaimed(ctx, event);
    },
  });
  return defineModule({
    name: 'stripe-events',
    /** The seed's `handleWebhookEvent(payload, sigHeader)`: `POST /webhooks/stripe`. */
    handleWebhookEvent: handle,
    /** The seed's WebhookIdempotencyService, as this module's flow uses it. */
    idempotency: ctx.idempotency,
    /** Records an already verified event without applying it; true when this call inserted it. */
    recordEvent: (event: StripeEvent, source: 'webhook' | 'reconcile' = 'webhook') =>
      recordEvent(ctx, event, JSON.stringify(event), source),
    /** The processor the idempotency flow runs: the event's one transaction, safe to run twice. */
    processEvent: (eventId: string, type: string) => processEvent(ctx, eventId, type),
    /** One batch of the retry worker: due pending or deferred events. Returns how many it claimed. */
    applyDue: () => retries.runOnce(),
    listEvents: (filter: { status?: InboxStatus; limit?: number } = {}) => listEvents(ctx, filter),
    replayEvent: (eventId: string) => replayEvent(ctx, eventId),
    reconcile: (opts: { since: Date; settledBeforeSeconds?: number }) => reconcile(ctx, deps.stripe, opts),
    routes: webhookRoutes(handle, (sigHeader) => refuseUnverifiableHeader(delivery, sigHeader)),
    workers: () => [
      retries,
      periodicWorker(
        deps.db,
        reconciliationJob(ctx, deps.stripe, deps.reconcileSchedule),
        deps.periodicCheckMs,
      ),
    ],
  });
}

export type StripeEventsModule = ReturnType<typeof createStripeEventsModule>;
