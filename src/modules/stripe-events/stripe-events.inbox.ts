import type { Logger } from 'pino';
import { nextTry, type QueuePolicy, retryLater } from '../../jobs/index.js';
import type { Db, Queryable } from '../../ports/db.js';
import { errorMessage, isDatabaseUnavailable } from '../../shared/errors.js';
import { storable, storableJson, storableString } from '../../shared/storable.js';
import type { AppliedOutcome, ApplyStep, EventApplier, Resolution } from './stripe-events.applier.js';
import type { StripeEvent } from './stripe-events.envelope.js';
import type {
  ClaimedEvent,
  IdempotentOutcome,
  ProcessResult,
  WebhookIdempotencyService,
} from './stripe-events.idempotency.js';
import type { StripeEventsMetrics } from './stripe-events.metrics.js';
import {
  deferEvent,
  INBOX_QUEUE,
  type InboxRow,
  insertEvent,
  lockEvent,
  SETTLED,
  settleAndClaimDeferred,
  settleEvent,
} from './stripe-events.sql.js';

export type { ClaimedEvent };

/** How the inbox spaces the tries of one event, and when it becomes a dead letter. */
export interface InboxOptions {
  lockTimeoutMs: number;
  retry: QueuePolicy & { maxAttempts: number };
  /**
   * A new row is left to the delivery that recorded it for this long before a retry worker may take it: the
   * inline try normally settles it in milliseconds, and the lock's lifetime is how long a live try may take.
   */
  firstTryLeaseMs: number;
  nowSeconds: () => number;
}

/** What the inbox's functions share: built once by the module, passed to each. */
export interface InboxContext {
  db: Db;
  applier: EventApplier;
  idempotency: WebhookIdempotencyService;
  metrics: StripeEventsMetrics;
  log: Logger;
  options: InboxOptions;
  /** Events from the other mode are someone else's: a live key never acts on test events and vice versa. */
  expectedLivemode: boolean;
}

/**
 * Records a verified event unless it is already there; true when this call inserted it. Whatever its strings
 * hold it is stored: where `jsonb` cannot take a character, the payload has U+FFFD in its place and the text
 * as sent is kept beside it.
 */
export async function recordEvent(
  ctx: InboxContext,
  event: StripeEvent,
  payloadJson: string,
  source: 'webhook' | 'reconcile',
): Promise<boolean> {
  const payload = storableJson(payloadJson);
  const { rows } = await ctx.db.query(
    insertEvent({
      id: event.id,
      type: storableString(event.type),
      livemode: event.livemode,
      created: event.created,
      payloadJson: payload.json,
      rawPayload: payload.changed ? payloadJson : null,
      source,
      leaseMs: ctx.options.firstTryLeaseMs,
    }),
  );
  return rows.length > 0;
}

const alreadySettled = (row: Pick<InboxRow, 'status' | 'reason' | 'order_id'>): ProcessResult => ({
  status: row.status,
  reason: row.reason,
  settledBefore: true,
  orderId: row.order_id,
  woken: [],
});

/** Writes what the try came to, in the event's transaction. A deferral past the limit dead-letters the event. */
async function settle(
  ctx: InboxContext,
  q: Queryable,
  row: InboxRow,
  outcome: AppliedOutcome,
): Promise<ProcessResult> {
  const orderId = outcome.orderId ?? row.order_id;
  const result = { settledBefore: false, orderId, woken: [] };
  if (outcome.status === 'done' && outcome.wake && orderId) {
    const { rows } = await q.query<ClaimedEvent & { stripe_created_at: Date }>(
      settleAndClaimDeferred(row.id, outcome.reason, orderId, ctx.options.lockTimeoutMs * 2),
    );
    // Oldest first, as Stripe made them, so that a reordered history settles in its own order.
    rows.sort((a, b) => new Date(a.stripe_created_at).getTime() - new Date(b.stripe_created_at).getTime());
    return { ...result, status: 'done', reason: outcome.reason, woken: rows };
  }
  if (outcome.status !== 'deferred') {
    await q.query(settleEvent(row.id, outcome.status, outcome.reason, outcome.orderId));
    return { ...result, status: outcome.status, reason: outcome.reason };
  }
  const next = nextTry(ctx.options.retry, row.attempts);
  if (next.verdict === 'retry') {
    await q.query(deferEvent(row.id, outcome.reason, outcome.orderId, next.delayMs));
    return { ...result, status: 'deferred', reason: outcome.reason };
  }
  const reason = `retry limit reached while ${outcome.reason}`;
  await q.query(deferEvent(row.id, outcome.reason, outcome.orderId, 0));
  await q.query(INBOX_QUEUE.deadLetter!(row.id, row.attempts, reason, null));
  return { ...result, status: 'failed', reason };
}

type Step = { kind: 'result'; result: ProcessResult } | { kind: 'lookup'; lookup: () => Promise<Resolution> };

/** Lookups one try may ask for (an order, then a charge): more means the applier loops, which is a bug. */
const MAX_LOOKUPS = 3;

/**
 * The event's one transaction: lock the inbox row (skip it if settled), let the applier do the event's work,
 * and settle the row. The applier may ask for a lookup at Stripe instead, which runs outside the transaction.
 */
async function applyInTx(
  ctx: InboxContext,
  q: Queryable,
  eventId: string,
  resolved: Resolution,
): Promise<Step> {
  const row = (await q.query<InboxRow>(lockEvent(eventId))).rows[0];
  if (!row) throw new Error(`event ${eventId} is not in the inbox`);
  if (SETTLED.includes(row.status)) return { kind: 'result', result: alreadySettled(row) };
  let step: ApplyStep;
  if (row.livemode !== ctx.expectedLivemode) {
    const mode = (live: boolean) => (live ? 'live' : 'test');
    step = {
      status: 'ignored',
      reason: `a ${mode(row.livemode)}-mode event, and this service uses a ${mode(ctx.expectedLivemode)}-mode key`,
      orderId: null,
    };
  } else {
    const object = (row.payload.data as { object: unknown }).object;
    const account = typeof row.payload.account === 'string' ? row.payload.account : null;
    step = await ctx.applier.apply(q, { id: row.id, type: row.type, account, object }, resolved);
  }
  if ('lookup' in step) return { kind: 'lookup', lookup: step.lookup };
  return { kind: 'result', result: await settle(ctx, q, row, step) };
}

/** A try that failed without an answer (a bug, Stripe unreachable): back off, or dead-letter at the limit. */
async function recordFailure(ctx: InboxContext, eventId: string, err: unknown): Promise<ProcessResult> {
  return ctx.db.tx(async (q) => {
    const row = (await q.query<InboxRow>(lockEvent(eventId))).rows[0];
    if (!row) throw err;
    if (SETTLED.includes(row.status)) return alreadySettled(row);
    const deadLetterReason = `retry limit reached: ${errorMessage(err)}`;
    const verdict = await retryLater(
      q,
      INBOX_QUEUE,
      ctx.options.retry,
      { key: row.id, attempts: row.attempts },
      { error: errorMessage(err), deadLetterReason },
    );
    return verdict === 'dead'
      ? {
          status: 'failed',
          reason: deadLetterReason,
          settledBefore: false,
          orderId: row.order_id,
          woken: [],
        }
      : { status: row.status, reason: row.reason, settledBefore: false, orderId: row.order_id, woken: [] };
  });
}

/**
 * The processor the idempotency flow runs: the event's transaction, safe to run twice. A database that is
 * unavailable propagates (nothing can be recorded; the caller retries later); any other failure is recorded on
 * the row and retried.
 */
export async function processEvent(ctx: InboxContext, eventId: string, type: string): Promise<ProcessResult> {
  let result: ProcessResult;
  try {
    let resolved: Resolution = {};
    let step = await ctx.db.tx((q) => applyInTx(ctx, q, eventId, resolved));
    for (let lookups = 1; step.kind === 'lookup'; lookups++) {
      if (lookups > MAX_LOOKUPS)
        throw new Error(`${type} ${eventId} still asks for a lookup after ${MAX_LOOKUPS}`);
      // What Stripe answers is written like what it signed: made storable first.
      resolved = { ...resolved, ...storable(await step.lookup()) };
      step = await ctx.db.tx((q) => applyInTx(ctx, q, eventId, resolved));
    }
    result = step.result;
  } catch (err) {
    if (isDatabaseUnavailable(err)) throw err;
    ctx.log.warn({ err, event_id: eventId, type }, 'applying a Stripe event failed; it will be retried');
    result = await recordFailure(ctx, eventId, err);
  }
  if (!result.settledBefore) {
    const counter = {
      done: ctx.metrics.processed,
      ignored: ctx.metrics.ignored,
      deferred: ctx.metrics.deferred,
      failed: ctx.metrics.failed,
      pending: undefined,
    }[result.status];
    counter?.inc({ type });
  }
  return result;
}

/**
 * Applies one event under the idempotency flow, then the events that were waiting on its order (a refund that
 * came before the payment), oldest first, so a reordered history settles without waiting for backoff.
 * `recordedNow`: the caller inserted the inbox row just before.
 */
export async function applyEvent(
  ctx: InboxContext,
  eventId: string,
  type: string,
  recordedNow = false,
): Promise<IdempotentOutcome> {
  const outcome = await ctx.idempotency.handleEventWithIdempotency(
    eventId,
    type,
    () => processEvent(ctx, eventId, type),
    recordedNow,
  );
  if (outcome.kind === 'processed')
    for (const waiting of outcome.result.woken) await applyClaimed(ctx, waiting);
  return outcome;
}

/**
 * Makes a claimed try. A try that another worker's lock kept from running still counts: it is rescheduled, or
 * at the limit dead-lettered, as any try that did not settle the event is, so no path re-claims an event
 * forever without progress. (Every other unsettled outcome was already rescheduled by `processEvent`.)
 */
export async function applyClaimed(ctx: InboxContext, job: ClaimedEvent): Promise<IdempotentOutcome> {
  const outcome = await applyEvent(ctx, job.id, job.type);
  if (outcome.kind === 'locked') {
    const error = 'another worker held the event lock';
    await retryLater(
      ctx.db,
      INBOX_QUEUE,
      ctx.options.retry,
      { key: job.id, attempts: job.attempts },
      {
        error,
        deadLetterReason: `retry limit reached: ${error}`,
      },
    );
  }
  return outcome;
}
