import type { Logger } from 'pino';
import type Stripe from 'stripe';
import type { Infra } from '../../compose.js';
import type { Queryable } from '../../ports/db.js';
import { type RetryPolicy, retryDelayMs } from '../../shared/backoff.js';
import { AppError, isDatabaseUnavailable, serviceUnavailable } from '../../shared/errors.js';
import type { OrdersService } from '../orders/orders.service.js';
import type { CommissionHooks } from './webhooks.commissions.js';
import { ORDER_ID_METADATA_KEY, type StripeEvent, StripeEventSchema } from './webhooks.event.js';
import { HANDLED_TYPES, HANDLERS, type HandlerResult, type OrderLocator } from './webhooks.handlers.js';
import {
  createWebhookIdempotencyService,
  type IdempotentOutcome,
  LOCK_TIMEOUT_SECONDS,
  type ProcessResult,
} from './webhooks.idempotency.js';
import { type SignatureFailure, verifyStripeSignature } from './webhooks.signature.js';
import {
  claimDue,
  countByStatus,
  existingEventIds,
  INBOX_STATUSES,
  type InboxRow,
  type InboxStatus,
  insertEvent,
  listEvents,
  lockEvent,
  orderIdByPaymentIntent,
  reopenEvent,
  SETTLED,
  selectEvent,
  updateEvent,
  wakeDeferred,
} from './webhooks.sql.js';

/** How retries of one event are spaced, and when it becomes a dead letter. */
export interface InboxRetryPolicy extends RetryPolicy {
  /** Attempts (failed or still waiting) after which the event is `failed`. */
  maxAttempts: number;
}

export const DEFAULT_RETRY: InboxRetryPolicy = {
  jitter: 'equal',
  // A failure from a brief database hiccup or a Stripe lookup usually clears in seconds.
  baseMs: 10_000,
  // Events waiting on another event are woken the moment their order moves, not by this timer, so a long
  // cap costs them nothing; it only spaces out retries of something that keeps failing.
  capMs: 4 * 60 * 60_000,
  // 23 attempts span at least 25 hours (about 50 at most): longer than any gap in which reconciliation (every
  // few minutes) or Stripe's own retries would bring what a deferred event waits for, and long enough to ride
  // out a bad deploy. An event still not applicable after that needs a person, so it becomes a dead letter
  // that `events list --status failed` shows and `events replay` retries.
  maxAttempts: 23,
};

/** Stripe keeps events for 30 days; `GET /v1/events` cannot reach further back. */
export const RECONCILE_MAX_WINDOW_MS = 30 * 24 * 60 * 60_000;

/** The delivery statuses of CONTRACT §3's 200 answer. */
export type DeliveryStatus = 'processed' | 'duplicate' | 'ignored' | 'queued';

export interface WebhookOptions {
  lockTimeoutMs: number;
  retry: InboxRetryPolicy;
  /**
   * A new row is left to the request that recorded it for this long before the retry worker may take it:
   * the inline attempt normally settles it in milliseconds, and the lock's lifetime is how long a live
   * attempt may take.
   */
  firstAttemptDelayMs: number;
  nowSeconds: () => number;
}

export interface WebhooksDeps {
  infra: Pick<Infra, 'db' | 'lock' | 'kv' | 'metrics' | 'stripe' | 'config' | 'webhookSecrets'>;
  orders: OrdersService;
  commissions: CommissionHooks;
  log: Logger;
  options?: Partial<WebhookOptions>;
}

export interface ReconcileSummary {
  since: string;
  listed: number;
  recorded: number;
  applied: number;
  ignored: number;
  waiting: number;
  failed: number;
  /** Listed by Stripe, missing here, and not a Stripe event by our schema: logged, never recorded. */
  unreadable: number;
}

const SIGNATURE_MESSAGES: Record<SignatureFailure, string> = {
  missing_header: 'the Stripe-Signature header is missing',
  malformed_header: 'the Stripe-Signature header is not t=<unix seconds>,v1=<signature>',
  no_v1_signature: 'the Stripe-Signature header has no v1 signature',
  empty_body: 'the body is empty',
  no_matching_signature: 'no v1 signature matches the body for any configured webhook secret',
  timestamp_outside_tolerance: 'the signature timestamp is outside the tolerance',
};

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 500);

type Step = { kind: 'result'; result: ProcessResult } | { kind: 'lookup'; locator: OrderLocator };

export function createWebhooksService(deps: WebhooksDeps) {
  const { db, metrics, stripe, config } = deps.infra;
  const options: WebhookOptions = {
    lockTimeoutMs: LOCK_TIMEOUT_SECONDS * 1000,
    retry: DEFAULT_RETRY,
    firstAttemptDelayMs: LOCK_TIMEOUT_SECONDS * 1000,
    nowSeconds: () => Math.floor(Date.now() / 1000),
    ...deps.options,
  };
  const idempotency = createWebhookIdempotencyService({
    db,
    lock: deps.infra.lock,
    kv: deps.infra.kv,
    metrics,
    log: deps.log,
    lockTimeoutMs: options.lockTimeoutMs,
  });
  // Events from the other mode are someone else's: a live key never acts on test events and vice versa.
  const expectedLivemode = /^(sk|rk)_live_/.test(config.stripeSecretKey ?? '');

  metrics.inboxEvents.collectWith(async () => {
    const { rows } = await db.query<{ status: string; n: number }>(countByStatus());
    return Object.fromEntries(
      INBOX_STATUSES.map((status) => [status, rows.find((r) => r.status === status)?.n ?? 0]),
    );
  });

  function parseEvent(payload: Buffer): StripeEvent {
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      throw new AppError(400, 'invalid_payload', 'the signed body is not JSON');
    }
    const parsed = StripeEventSchema.safeParse(json);
    if (!parsed.success) {
      const fields = Object.fromEntries(
        parsed.error.issues.map((i) => [i.path.join('.') || 'body', i.message]),
      );
      throw new AppError(400, 'invalid_payload', 'the signed body is not a Stripe event', {
        details: { fields },
      });
    }
    return parsed.data;
  }

  async function record(
    event: StripeEvent,
    payloadJson: string,
    source: 'webhook' | 'reconcile',
  ): Promise<boolean> {
    const { rows } = await db.query(
      insertEvent({
        id: event.id,
        type: event.type,
        livemode: event.livemode,
        created: event.created,
        payloadJson,
        source,
        firstAttemptDelayMs: options.firstAttemptDelayMs,
      }),
    );
    return rows.length > 0;
  }

  /** Settles, defers or keeps the row, in the caller's transaction. Deferring past the limit dead-letters. */
  async function settle(
    q: Queryable,
    row: InboxRow,
    outcome: HandlerResult | { status: 'failed'; reason: string },
    orderId: string | null,
  ) {
    let status: InboxStatus = outcome.status;
    let reason: string | null = outcome.reason;
    let attempts = row.attempts;
    let delay = 0;
    if (status === 'deferred') {
      attempts += 1;
      if (attempts >= options.retry.maxAttempts) {
        status = 'failed';
        reason = `retry limit reached while ${reason}`;
      } else {
        delay = retryDelayMs(attempts, options.retry);
      }
    }
    await q.query(
      updateEvent({
        id: row.id,
        status,
        reason,
        orderId,
        attempts,
        nextAttemptDelayMs: delay,
        lastError: null,
      }),
    );
    const wake = outcome.status === 'done' && outcome.wake;
    return { status, reason, settledBefore: false, orderId, wake } satisfies ProcessResult;
  }

  /**
   * The event's one transaction: lock the inbox row (skip it if settled), resolve and lock the order, apply
   * the handler (transition, diff, outbox message, effect rows, commission hooks) and settle the row.
   * Returns `lookup` instead when the order can only be found by asking Stripe, which must not happen while
   * holding row locks.
   */
  async function applyInTx(
    q: Queryable,
    eventId: string,
    resolved: { orderId: string | null } | undefined,
  ): Promise<Step> {
    const row = (await q.query<InboxRow>(lockEvent(eventId))).rows[0];
    if (!row) throw new Error(`event ${eventId} is not in the inbox`);
    const done = (result: ProcessResult): Step => ({ kind: 'result', result });
    if (SETTLED.includes(row.status)) {
      return done({
        status: row.status,
        reason: row.reason,
        settledBefore: true,
        orderId: row.order_id,
        wake: false,
      });
    }
    if (row.livemode !== expectedLivemode) {
      const mode = (live: boolean) => (live ? 'live' : 'test');
      return done(
        await settle(
          q,
          row,
          {
            status: 'ignored',
            reason: `a ${mode(row.livemode)}-mode event, and this service uses a ${mode(expectedLivemode)}-mode key`,
          },
          null,
        ),
      );
    }
    const read = HANDLERS[row.type];
    if (!read)
      return done(
        await settle(q, row, { status: 'ignored', reason: `${row.type} events are not handled` }, null),
      );
    const handler = read((row.payload.data as { object: unknown }).object);
    if ('problem' in handler) {
      // Signed by Stripe yet unreadable: retrying cannot help, a person has to look.
      return done(
        await settle(
          q,
          row,
          { status: 'failed', reason: `unreadable ${row.type} object: ${handler.problem}` },
          null,
        ),
      );
    }
    const { locator } = handler;
    let orderId = resolved ? resolved.orderId : locator.orderId;
    if (!orderId && !resolved && locator.paymentIntentId) {
      orderId =
        (await q.query<{ id: string }>(orderIdByPaymentIntent(locator.paymentIntentId))).rows[0]?.id ?? null;
    }
    if (!orderId && !resolved && (locator.paymentIntentId || locator.chargeId))
      return { kind: 'lookup', locator };
    if (!orderId) {
      const named = locator.paymentIntentId ?? locator.chargeId;
      const reason = named
        ? `no order of this service is linked to ${named}, here or at Stripe`
        : 'the event names no order';
      return done(await settle(q, row, { status: 'ignored', reason }, null));
    }
    const order = await deps.orders.lockOrder(q, orderId);
    if (!order) {
      return done(
        await settle(
          q,
          row,
          { status: 'ignored', reason: `order ${orderId} is unknown to this service` },
          orderId,
        ),
      );
    }
    const outcome = await handler.apply(
      { q, orders: deps.orders, commissions: deps.commissions, eventId, cause: `stripe:${eventId}` },
      order,
    );
    return done(await settle(q, row, outcome, order.id));
  }

  /** The order id Stripe's metadata carries for a PaymentIntent or Charge; null when Stripe has no such object. */
  async function orderIdAtStripe(locator: OrderLocator): Promise<string | null> {
    const missing = (err: unknown) => (err as { code?: string }).code === 'resource_missing';
    try {
      let paymentIntentId = locator.paymentIntentId;
      if (!paymentIntentId && locator.chargeId) {
        const charge: Stripe.Charge = await stripe.charges.retrieve(locator.chargeId);
        const fromCharge = charge.metadata?.[ORDER_ID_METADATA_KEY];
        if (fromCharge) return fromCharge;
        paymentIntentId =
          typeof charge.payment_intent === 'string'
            ? charge.payment_intent
            : (charge.payment_intent?.id ?? null);
      }
      if (!paymentIntentId) return null;
      const pi: Stripe.PaymentIntent = await stripe.paymentIntents.retrieve(paymentIntentId);
      return pi.metadata?.[ORDER_ID_METADATA_KEY] ?? null;
    } catch (err) {
      if (missing(err)) return null;
      throw err;
    }
  }

  /** A processing failure that is not an answer (a bug, Stripe unreachable): back off, or dead-letter at the limit. */
  async function recordFailure(eventId: string, err: unknown): Promise<ProcessResult> {
    return db.tx(async (q) => {
      const row = (await q.query<InboxRow>(lockEvent(eventId))).rows[0];
      if (!row) throw err;
      if (SETTLED.includes(row.status)) {
        return {
          status: row.status,
          reason: row.reason,
          settledBefore: true,
          orderId: row.order_id,
          wake: false,
        };
      }
      const attempts = row.attempts + 1;
      const dead = attempts >= options.retry.maxAttempts;
      const status: InboxStatus = dead ? 'failed' : row.status;
      const reason = dead ? `retry limit reached: ${errorText(err)}` : row.reason;
      await q.query(
        updateEvent({
          id: eventId,
          status,
          reason,
          orderId: null,
          attempts,
          nextAttemptDelayMs: dead ? 0 : retryDelayMs(attempts, options.retry),
          lastError: errorText(err),
        }),
      );
      return { status, reason, settledBefore: false, orderId: row.order_id, wake: false };
    });
  }

  /**
   * The processor handed to the idempotency service. A database that is unavailable propagates (nothing can
   * be recorded; the caller retries later); any other failure is recorded on the row and retried.
   */
  async function processEvent(eventId: string, type: string): Promise<ProcessResult> {
    let result: ProcessResult;
    try {
      let step = await db.tx((q) => applyInTx(q, eventId, undefined));
      if (step.kind === 'lookup') {
        const orderId = await orderIdAtStripe(step.locator);
        step = await db.tx((q) => applyInTx(q, eventId, { orderId }));
      }
      if (step.kind !== 'result')
        throw new Error('the order was looked up at Stripe and still needs a lookup');
      result = step.result;
    } catch (err) {
      if (isDatabaseUnavailable(err)) throw err;
      deps.log.warn({ err, event_id: eventId, type }, 'applying a Stripe event failed; it will be retried');
      result = await recordFailure(eventId, err);
    }
    if (!result.settledBefore) {
      const counter = {
        done: metrics.eventsProcessed,
        ignored: metrics.eventsIgnored,
        deferred: metrics.eventsDeferred,
        failed: metrics.eventsFailed,
        pending: undefined,
      }[result.status];
      counter?.inc({ type });
    }
    return result;
  }

  /**
   * Processes one event under the idempotency flow, then the events that were waiting on its order (a refund
   * that came before the payment), oldest first, so a reordered history settles without waiting for backoff.
   */
  async function process(eventId: string, type: string): Promise<IdempotentOutcome> {
    const outcome = await idempotency.handleEventWithIdempotency(eventId, type, () =>
      processEvent(eventId, type),
    );
    if (outcome.kind === 'processed' && outcome.result.wake && outcome.result.orderId) {
      const { rows } = await db.query<{ id: string; type: string; stripe_created_at: Date }>(
        wakeDeferred(outcome.result.orderId),
      );
      rows.sort((a, b) => new Date(a.stripe_created_at).getTime() - new Date(b.stripe_created_at).getTime());
      for (const waiting of rows) await process(waiting.id, waiting.type);
    }
    return outcome;
  }

  /** Inline processing after a delivery was recorded: the delivery is already safe, so failures only log. */
  async function processAfterRecording(eventId: string, type: string): Promise<DeliveryStatus> {
    try {
      const outcome = await process(eventId, type);
      if (outcome.kind === 'duplicate') return 'duplicate';
      if (outcome.kind === 'locked') return 'queued';
      return outcome.result.status === 'done'
        ? 'processed'
        : outcome.result.status === 'ignored'
          ? 'ignored'
          : 'queued';
    } catch (err) {
      deps.log.warn(
        { err, event_id: eventId, type },
        'inline processing failed; the retry worker will apply the event',
      );
      return 'queued';
    }
  }

  const service = {
    idempotency,
    expectedLivemode,
    options,

    /**
     * `POST /webhooks/stripe`: verify the signature over the raw bytes, record the event, and only then
     * acknowledge; then apply it inline. Throws AppError 400 (signature, payload) or 503 (database), in which
     * case nothing was stored or acknowledged.
     */
    async handleWebhookEvent(
      payload: Buffer,
      sigHeader: string,
    ): Promise<{ received: true; event_id: string; status: DeliveryStatus }> {
      const check = verifyStripeSignature(
        payload,
        sigHeader,
        deps.infra.webhookSecrets,
        config.webhookToleranceSeconds,
        options.nowSeconds(),
      );
      if (!check.ok) {
        throw new AppError(400, 'signature_verification_failed', SIGNATURE_MESSAGES[check.reason], {
          details: { reason: check.reason },
        });
      }
      const event = parseEvent(payload);
      let inserted: boolean;
      try {
        inserted = await record(event, payload.toString('utf8'), 'webhook');
      } catch (err) {
        if (isDatabaseUnavailable(err)) throw serviceUnavailable('the database', err);
        throw err;
      }
      if (!inserted) {
        metrics.eventsDuplicate.inc({ type: event.type });
        await service.finishIfDue(event.id, event.type);
        return { received: true, event_id: event.id, status: 'duplicate' };
      }
      metrics.eventsReceived.inc({ type: event.type });
      return {
        received: true,
        event_id: event.id,
        status: await processAfterRecording(event.id, event.type),
      };
    },

    /**
     * A redelivery of an event recorded earlier but never settled (its first processing crashed or is
     * backing off): if it is due, this delivery does the work instead of waiting for the worker. A burst of
     * duplicates right after the first delivery finds it not yet due and leaves it alone.
     */
    async finishIfDue(eventId: string, type: string): Promise<void> {
      try {
        const row = (await db.query<InboxRow & { due: boolean }>(selectEvent(eventId))).rows[0];
        if (row && !SETTLED.includes(row.status) && row.due) await process(eventId, type);
      } catch (err) {
        deps.log.warn(
          { err, event_id: eventId },
          'processing a redelivered event failed; the retry worker will apply it',
        );
      }
    },

    /** Applies one event through the full idempotency flow (the CLI, the worker and tests use this). */
    process,

    /** The processor the idempotency flow runs: the event's one transaction, safe to run twice. */
    processEvent,

    /** Records an already verified event without processing it; true when this call inserted it. */
    recordEvent: (event: StripeEvent, source: 'webhook' | 'reconcile' = 'webhook') =>
      record(event, JSON.stringify(event), source),

    /** The retry worker's batch: claims due pending/deferred events and processes each. Returns how many. */
    async processDue(limit: number): Promise<number> {
      const { rows } = await db.query<{ id: string; type: string }>(
        claimDue(limit, options.lockTimeoutMs * 2),
      );
      for (const row of rows) await process(row.id, row.type);
      return rows.length;
    },

    async listEvents(filter: { status?: InboxStatus; limit?: number } = {}) {
      const limit = filter.limit ?? 100;
      const { rows } = await db.query<Omit<InboxRow, 'payload'>>(listEvents(filter.status, limit + 1));
      return { data: rows.slice(0, limit), has_more: rows.length > limit };
    },

    /**
     * `events replay`: reopens an event that is not applied (failed, ignored, deferred, pending) and processes
     * it now. Null when the inbox has no such event; an applied event is left alone (its effects exist).
     */
    async replayEvent(
      eventId: string,
    ): Promise<{ event_id: string; status: InboxStatus; reason: string | null } | null> {
      const reopened = (await db.query<{ id: string; type: string }>(reopenEvent(eventId))).rows[0];
      const current = async () => (await db.query<InboxRow>(selectEvent(eventId))).rows[0];
      if (!reopened) {
        const row = await current();
        return row ? { event_id: row.id, status: row.status, reason: row.reason } : null;
      }
      await idempotency.forgetEvent(eventId);
      await process(eventId, reopened.type);
      const row = (await current())!;
      return { event_id: row.id, status: row.status, reason: row.reason };
    },

    /**
     * Lists Stripe's events since `since` (at most 30 days back) and records and applies each one the inbox
     * lacks, oldest first: a missed delivery, or a webhook endpoint that was disabled, heals itself. Running
     * it again finds nothing missing. `settledBeforeSeconds` leaves out the newest events, still on their way
     * as webhooks. An event that fails the schema is logged and counted as unreadable, never recorded.
     */
    async reconcile(opts: { since: Date; settledBeforeSeconds?: number }): Promise<ReconcileSummary> {
      const floor = Date.now() - RECONCILE_MAX_WINDOW_MS;
      const since = new Date(Math.max(opts.since.getTime(), floor));
      const until = options.nowSeconds() - (opts.settledBeforeSeconds ?? 0);
      const summary: ReconcileSummary = {
        since: since.toISOString(),
        listed: 0,
        recorded: 0,
        applied: 0,
        ignored: 0,
        waiting: 0,
        failed: 0,
        unreadable: 0,
      };
      // Stripe lists newest first, a page at a time. The whole window is gathered before anything is applied,
      // so that it can be applied oldest first: an event then rarely comes before the one it depends on, and
      // few are deferred. Only the missing events are kept, so memory follows the gap, not the window.
      const missing: Array<{ event: StripeEvent; raw: Stripe.Event }> = [];
      let startingAfter: string | undefined;
      for (;;) {
        const page: Stripe.ApiList<Stripe.Event> = await stripe.events.list({
          created: { gte: Math.floor(since.getTime() / 1000) },
          types: HANDLED_TYPES,
          limit: 100,
          ...(startingAfter ? { starting_after: startingAfter } : {}),
        });
        summary.listed += page.data.length;
        const ids = page.data.map((e) => e.id);
        const known = new Set((await db.query<{ id: string }>(existingEventIds(ids))).rows.map((r) => r.id));
        for (const raw of page.data) {
          if (known.has(raw.id)) continue;
          const parsed = StripeEventSchema.safeParse(raw);
          if (!parsed.success) {
            summary.unreadable += 1;
            deps.log.warn(
              { event_id: raw.id, type: raw.type, issues: parsed.error.issues },
              'reconcile: Stripe listed an event that does not parse as one; it is not recorded',
            );
            continue;
          }
          if (parsed.data.created <= until) missing.push({ event: parsed.data, raw });
        }
        const last = page.data.at(-1);
        if (!page.has_more || !last) break;
        startingAfter = last.id;
      }
      missing.sort(
        (a, b) =>
          a.event.created - b.event.created ||
          (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0),
      );
      for (const { event, raw } of missing) {
        if (!(await record(event, JSON.stringify(raw), 'reconcile'))) continue;
        summary.recorded += 1;
        metrics.eventsReceived.inc({ type: event.type });
        const outcome = await process(event.id, event.type);
        const status = outcome.kind === 'processed' ? outcome.result.status : 'pending';
        if (status === 'done') summary.applied += 1;
        else if (status === 'ignored') summary.ignored += 1;
        else if (status === 'failed') summary.failed += 1;
        else summary.waiting += 1;
      }
      return summary;
    },
  };
  return service;
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
