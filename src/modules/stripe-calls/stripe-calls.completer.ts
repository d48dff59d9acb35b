import { queueWorker, type Worker } from '../../jobs/index.js';
import type { Db } from '../../ports/db.js';
import type { RetryPolicy } from '../../shared/backoff.js';
import { AppError } from '../../shared/errors.js';
import { CALL_LEASE_MS, finishCall, type StripeCallSpec } from './stripe-calls.phases.js';
import { STRIPE_CALLS_QUEUE, type StripeCallKind, type StripeCallRow } from './stripe-calls.sql.js';

/**
 * Stripe keeps idempotency keys for 24 hours; repeating a call after that could create a second object. The
 * request's own try and ten of the completer's, with the backoff below, end within about an hour and a half of
 * the first, far inside that window.
 */
const MAX_ATTEMPTS = 11;
/** How the completer's tries of one call are spaced. */
const COMPLETION_RETRY: RetryPolicy = {
  // Stripe's brief unavailability (a 5xx, a dropped connection) usually clears in seconds: the first retries
  // come soon, within 10 s, 20 s, 40 s, … (the completer's first try is the call's second, and the window
  // doubles from `baseMs` with every try).
  baseMs: 5_000,
  // Bounds any one wait to an hour: asking more often does not end a long Stripe outage sooner, and an hour
  // is still far inside the 24 h key window. The ninth wait (at most ~43 min) stays below it.
  capMs: 3_600_000,
  // Every wait at least half its window: calls that failed together still spread out, and the ten tries span
  // at least ~43 min (at most ~85), so a Stripe outage shorter than that cannot use them all up.
  jitter: 'equal',
};
/** Calls per claim: each makes one or two Stripe requests, so a small batch keeps a claim short. */
const BATCH = 10;
/** Pending calls are rare (a crash or an outage), so polling every 5 s costs nothing and heals quickly. */
const IDLE_MS = 5_000;

// biome-ignore lint/suspicious/noExplicitAny: each kind's spec has its own params, result and view types.
export type CallSpecs = Record<StripeCallKind, StripeCallSpec<any, any, unknown>>;

/**
 * The completer: finishes calls a crash or an outage left pending by running phases 2 and 3 again. A final
 * answer (Stripe refused, or the order moved on) is stored by the phases themselves and ends the call; only
 * "try again later" is retried.
 */
export function stripeCallsCompleter(db: Db, specs: CallSpecs): Worker {
  return queueWorker<StripeCallRow>({
    name: 'stripe-calls-completer',
    db,
    queue: STRIPE_CALLS_QUEUE,
    policy: { ...COMPLETION_RETRY, maxAttempts: MAX_ATTEMPTS },
    batchSize: BATCH,
    leaseMs: CALL_LEASE_MS,
    idleMs: IDLE_MS,
    keyOf: (call) => call.id,
    async run(call) {
      try {
        await finishCall(db, specs[call.kind], call);
      } catch (err) {
        if (err instanceof AppError && !err.retryable) return;
        throw err;
      }
    },
  });
}
