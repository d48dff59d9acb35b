import type Stripe from 'stripe';
import type { PeriodicJob } from '../../jobs/index.js';
import { errorMessage, isDatabaseUnavailable } from '../../shared/errors.js';
import { type StripeEvent, StripeEventSchema } from './stripe-events.envelope.js';
import { applyEvent, type InboxContext, recordEvent } from './stripe-events.inbox.js';
import { existingEventIds, type InboxStatus } from './stripe-events.sql.js';

/** Stripe keeps events for 30 days; `GET /v1/events` cannot reach further back. */
export const RECONCILE_MAX_WINDOW_MS = 30 * 24 * 60 * 60_000;

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
  /** Events that could not be recorded or applied, each with why; the others went on without them. */
  errors: Array<{ event_id: string; error: string }>;
}

/**
 * Stripe lists newest first, a page at a time. The whole window is gathered before anything is applied, so
 * that it can be applied oldest first: an event then rarely comes before the one it depends on, and few are
 * deferred. Only the missing events are kept, so memory follows the gap, not the window.
 */
async function listMissing(
  ctx: InboxContext,
  stripe: Stripe,
  since: Date,
  until: number,
  summary: ReconcileSummary,
): Promise<Array<{ event: StripeEvent; raw: Stripe.Event }>> {
  const missing: Array<{ event: StripeEvent; raw: Stripe.Event }> = [];
  let startingAfter: string | undefined;
  for (;;) {
    const page: Stripe.ApiList<Stripe.Event> = await stripe.events.list({
      created: { gte: Math.floor(since.getTime() / 1000) },
      types: [...ctx.applier.types],
      limit: 100,
      ...(startingAfter ? { starting_after: startingAfter } : {}),
    });
    summary.listed += page.data.length;
    const ids = page.data.map((e) => e.id);
    const known = new Set((await ctx.db.query<{ id: string }>(existingEventIds(ids))).rows.map((r) => r.id));
    for (const raw of page.data) {
      if (known.has(raw.id)) continue;
      const parsed = StripeEventSchema.safeParse(raw);
      if (!parsed.success) {
        summary.unreadable += 1;
        ctx.log.warn(
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
  return missing.sort(
    (a, b) =>
      a.event.created - b.event.created || (a.event.id < b.event.id ? -1 : a.event.id > b.event.id ? 1 : 0),
  );
}

/** Records one missing event and applies it: its status after, or null when a delivery recorded it first. */
async function recordAndApply(
  ctx: InboxContext,
  event: StripeEvent,
  raw: Stripe.Event,
): Promise<InboxStatus | null> {
  if (!(await recordEvent(ctx, event, JSON.stringify(raw), 'reconcile'))) return null;
  ctx.metrics.received.inc({ type: event.type });
  const outcome = await applyEvent(ctx, event.id, event.type, true);
  return outcome.kind === 'processed' ? outcome.result.status : 'pending';
}

/**
 * Lists Stripe's events since `since` (at most 30 days back) and records and applies each one the inbox
 * lacks, oldest first: a missed delivery, or a webhook endpoint that was disabled, heals itself. Running it
 * again finds nothing missing. `settledBeforeSeconds` leaves out the newest events, still on their way as
 * webhooks. An event that fails the schema is logged and counted as unreadable, never recorded.
 */
export async function reconcile(
  ctx: InboxContext,
  stripe: Stripe,
  opts: { since: Date; settledBeforeSeconds?: number },
): Promise<ReconcileSummary> {
  const floor = Date.now() - RECONCILE_MAX_WINDOW_MS;
  const since = new Date(Math.max(opts.since.getTime(), floor));
  const until = ctx.options.nowSeconds() - (opts.settledBeforeSeconds ?? 0);
  const summary: ReconcileSummary = {
    since: since.toISOString(),
    listed: 0,
    recorded: 0,
    applied: 0,
    ignored: 0,
    waiting: 0,
    failed: 0,
    unreadable: 0,
    errors: [],
  };
  for (const { event, raw } of await listMissing(ctx, stripe, since, until, summary)) {
    try {
      const status = await recordAndApply(ctx, event, raw);
      if (status === null) continue;
      summary.recorded += 1;
      if (status === 'done') summary.applied += 1;
      else if (status === 'ignored') summary.ignored += 1;
      else if (status === 'failed') summary.failed += 1;
      else summary.waiting += 1;
    } catch (err) {
      // Nothing can be recorded without the database: the run fails, and the next one takes the same window.
      if (isDatabaseUnavailable(err)) throw err;
      // Anything else is this event's own problem: it must not hold back the rest, nor the window.
      summary.failed += 1;
      summary.errors.push({ event_id: event.id, error: errorMessage(err) });
      ctx.log.error(
        { err, event_id: event.id, type: event.type },
        'reconcile: an event could not be recorded',
      );
    }
  }
  return summary;
}

/**
 * The schedule of the periodic reconciliation. Every 5 minutes: a missed delivery is healed within minutes, and
 * the listing stays cheap (one request per 100 events of the window).
 */
export interface ReconcileSchedule {
  everyMs: number;
  /** The very first run (no earlier one recorded) looks back this far. */
  firstWindowMs: number;
  /** Each run overlaps the previous one by this much, so an event created during a run is never missed. */
  overlapMs: number;
  /**
   * Events younger than this are still being delivered by Stripe (it sends within seconds); leaving them to
   * their webhook spares recording each one twice.
   */
  settleSeconds: number;
}

export const RECONCILE_SCHEDULE: ReconcileSchedule = {
  everyMs: 5 * 60_000,
  // A day: past any deploy gap worth healing automatically on a new installation.
  firstWindowMs: 24 * 60 * 60_000,
  overlapMs: 10 * 60_000,
  settleSeconds: 60,
};

/**
 * The periodic reconciliation, once per period across all instances. Each run continues from where the last
 * successful one started (less the overlap), so a restart or a long outage neither repeats the listing nor
 * leaves a gap; at most Stripe's 30 days are looked at.
 */
export function reconciliationJob(
  ctx: InboxContext,
  stripe: Stripe,
  schedule: ReconcileSchedule = RECONCILE_SCHEDULE,
): PeriodicJob {
  return {
    name: 'stripe-reconciliation',
    everyMs: schedule.everyMs,
    // Listing 30 days of events at Stripe's read rate takes minutes, not hours.
    leaseMs: 30 * 60_000,
    // Stripe unreachable: try again soon, over the same window.
    retryMs: 30_000,
    async run({ previousStart, startedAt }) {
      const since = new Date(
        previousStart
          ? previousStart.getTime() - schedule.overlapMs
          : startedAt.getTime() - schedule.firstWindowMs,
      );
      const summary = await reconcile(ctx, stripe, { since, settledBeforeSeconds: schedule.settleSeconds });
      if (summary.recorded > 0)
        ctx.log.warn({ summary }, 'reconciliation recorded events that no webhook had delivered');
    },
  };
}
