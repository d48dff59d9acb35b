import Stripe from 'stripe';
import type { Db, Queryable } from '../../ports/db.js';
import { type RetryPolicy, retryDelayMs } from '../../shared/backoff.js';
import { AppError, serviceUnavailable } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { Worker } from '../../workers/runner.js';
import {
  type AttemptKind,
  type AttemptRow,
  claimDueAttempts,
  insertAttempt,
  markAttemptFailed,
  scheduleAttempt,
  selectAttemptByRequest,
} from './attempts.sql.js';

/**
 * Calls to Stripe in atomic phases (DESIGN §5, after Brandur Leach's "atomic phases"): phase 1 records the
 * attempt in our database, phase 2 calls Stripe with an idempotency key derived from the attempt's id, phase 3
 * stores the answer. A crash between 2 and 3 leaves a pending attempt; repeating phase 2 with the same key
 * makes Stripe answer with the object it already made, so nothing is ever created twice.
 */

/**
 * The completer first looks at an attempt this long after it was recorded: by then the request that made it
 * has finished or died (a Stripe call takes at most 3 tries × the SDK's 20 s timeout).
 */
export const FIRST_COMPLETION_DELAY_MS = 2 * 60 * 1000;
/**
 * Stripe keeps idempotency keys for 24 hours; repeating a call after that could create a second object. Ten
 * tries with the backoff below end within about an hour and a half of the first, far inside that window.
 */
const MAX_TRIES = 10;
/** How the completer's tries of one attempt are spaced. */
const COMPLETION_RETRY: RetryPolicy = {
  // Stripe's brief unavailability (a 5xx, a dropped connection) usually clears in seconds: the first retries
  // come soon, within 10 s, 20 s, 40 s, …
  baseMs: 10_000,
  // Bounds any one wait to an hour: asking more often does not end a long Stripe outage sooner, and an hour
  // is still far inside the 24 h key window. The ninth wait (at most ~43 min) stays below it.
  capMs: 3_600_000,
  // Every wait at least half its window: attempts that failed together still spread out, and the ten tries
  // span at least ~43 min (at most ~85), so a Stripe outage shorter than that cannot use them all up.
  jitter: 'equal',
};
/** Attempts per claim: each makes one or two Stripe calls, so a small batch keeps a claim short. */
const BATCH = 10;
/** Pending attempts are rare (a crash or an outage), so polling every 5 s costs nothing and heals quickly. */
const IDLE_MS = 5_000;

/** Stripe's Idempotency-Key for an attempt's call; `step` tells apart several calls of one attempt. */
export const stripeIdempotencyKey = (attempt: Pick<AttemptRow, 'id'>, step?: string) =>
  step ? `${attempt.id}:${step}` : attempt.id;

export async function recordAttempt<P>(
  q: Queryable,
  a: { kind: AttemptKind; orderId: string; requestId: string | null; params: P; amount?: number },
): Promise<AttemptRow<P>> {
  const { rows } = await q.query<AttemptRow<P>>(
    insertAttempt({
      id: newId('att'),
      kind: a.kind,
      orderId: a.orderId,
      requestId: a.requestId,
      params: a.params,
      amount: a.amount ?? null,
      firstCompletionMs: FIRST_COMPLETION_DELAY_MS,
    }),
  );
  return rows[0]!;
}

/** The attempt a previous try of the same API request (same Idempotency-Key) started, if any. */
export async function attemptOfRequest<P>(
  q: Queryable,
  kind: AttemptKind,
  requestId: string | null,
): Promise<AttemptRow<P> | null> {
  if (!requestId) return null;
  return (await q.query<AttemptRow<P>>(selectAttemptByRequest(kind, requestId))).rows[0] ?? null;
}

/** The error a failed attempt answered with, raised again for a retry of the same request. */
export const storedFailure = (attempt: AttemptRow<unknown>) => {
  const e = attempt.error ?? { status: 502, code: 'stripe_error', message: 'Stripe refused the request' };
  return new AppError(e.status, e.code, e.message, e.details ? { details: e.details } : {});
};

/**
 * Whether Stripe may accept the same call later: no answer at all (network), a 5xx, rate limiting, or a
 * 409 for a concurrent request with the same key. Everything else is Stripe's final word on these params.
 */
export function isRetryableStripeError(err: unknown): boolean {
  if (!(err instanceof Stripe.errors.StripeError)) return false;
  if (err instanceof Stripe.errors.StripeConnectionError) return true;
  const status = err.statusCode;
  return status === undefined || status >= 500 || status === 429 || status === 409;
}

/** Stripe answered 404: the object does not exist in this account. */
export const isMissingStripeObject = (err: unknown) =>
  err instanceof Stripe.errors.StripeError && err.statusCode === 404;

/** For a call Stripe may accept later: the attempt stays pending for a retry or the completer. */
export const stripeUnavailable = (err: unknown) => serviceUnavailable('Stripe', err);

/** Marks the attempt failed with the error its request answers, now and on every retry. */
export async function failAttempt(
  db: Queryable,
  attempt: Pick<AttemptRow, 'id'>,
  error: AppError,
): Promise<AppError> {
  await db.query(
    markAttemptFailed(attempt.id, {
      status: error.status,
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    }),
  );
  return error;
}

export type AttemptHandlers = Record<AttemptKind, (attempt: AttemptRow) => Promise<unknown>>;

/**
 * The completer: finishes attempts a crash or an outage left pending by running phases 2 and 3 again. Rows
 * are claimed with `for update skip locked`, so any number of workers share the work.
 */
export function createAttemptsCompleter(db: Db, handlers: AttemptHandlers): Worker {
  return {
    name: 'stripe-attempts-completer',
    idleMs: IDLE_MS,
    async runOnce() {
      const due = await db.tx(async (q) => {
        const rows = (await q.query<AttemptRow>(claimDueAttempts(BATCH))).rows;
        // `tries` counts the claims before this one, so this is try `tries + 1`.
        for (const row of rows)
          await q.query(scheduleAttempt(row.id, retryDelayMs(row.tries + 1, COMPLETION_RETRY)));
        return rows;
      });
      for (const attempt of due) {
        try {
          await handlers[attempt.kind](attempt);
        } catch (err) {
          const final = err instanceof AppError && !err.retryable;
          if (!final && attempt.tries + 1 >= MAX_TRIES) {
            await failAttempt(
              db,
              attempt,
              new AppError(502, 'stripe_unreachable', `Stripe did not answer after ${MAX_TRIES} tries`),
            );
          }
        }
      }
      return due.length;
    },
  };
}
