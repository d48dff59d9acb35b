import Stripe from 'stripe';
import type { Db, Queryable } from '../../ports/db.js';
import { AppError, serviceUnavailable } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import {
  insertCall,
  markCallDone,
  markCallFailed,
  type StripeCallKind,
  type StripeCallRow,
  selectCallByRequest,
  selectCallForUpdate,
} from './stripe-calls.sql.js';

/**
 * Calls to Stripe in atomic phases (DESIGN §5, after Brandur Leach's "atomic phases" and rocket-rides-atomic's
 * recovery points): phase 1 records the call in our database, in the transaction that checked everything the
 * call depends on; phase 2 calls Stripe with an idempotency key derived from the call's id; phase 3 stores the
 * answer, in a transaction holding the call row. A crash between 2 and 3 leaves a pending call; repeating
 * phase 2 with the same key makes Stripe answer with the object it already made, so nothing is ever created
 * twice. Phases 2 and 3 work from the call row alone, so the request, a retry of it and the completer all
 * finish a call the same way.
 */

/**
 * The completer first looks at a call this long after it was recorded: by then the request that made it has
 * finished or died (a Stripe call takes at most 3 tries × the SDK's 20 s timeout).
 */
export const CALL_LEASE_MS = 2 * 60 * 1000;

/** How one kind of call is made and settled (checkout sessions, refunds; payouts would be a third). */
export interface StripeCallSpec<P, R extends { id: string }, V> {
  kind: StripeCallKind;
  /** Phase 2: the request(s) to Stripe. `key(step)` is Stripe's Idempotency-Key for each of them. */
  call(call: StripeCallRow<P>, key: (step?: string) => string): Promise<R>;
  /** A final refusal by Stripe (not retryable), as the error the request answers now and on every retry. */
  refused(err: unknown, call: StripeCallRow<P>): AppError;
  /**
   * Phase 3, in the transaction that holds the call row: stores what Stripe made wherever it belongs. It may
   * instead return, before writing anything, the error that fails the call (the order moved on meanwhile).
   */
  settle?(q: Queryable, call: StripeCallRow<P>, made: R): Promise<AppError | undefined>;
  /** After phase 3 failed the call: what to undo at Stripe, best effort (the object made needs no payer). */
  undo?(call: StripeCallRow<P>, made: R): Promise<void>;
  /** The request's answer, from Stripe's object (the one just made, or the one stored by an earlier try). */
  view(made: R, call: StripeCallRow<P>): V;
}

export interface PhaseHooks {
  /**
   * Test seam: runs after Stripe answered and before the answer is stored, so a test can fail exactly where a
   * crash would hurt most. Never set outside tests.
   */
  afterStripeCall?: (call: StripeCallRow) => Promise<void>;
}

/** Stripe's Idempotency-Key for a call's request; `step` tells apart several requests of one call. */
export const stripeIdempotencyKey = (call: Pick<StripeCallRow, 'id'>, step?: string) =>
  step ? `${call.id}:${step}` : call.id;

/** Phase 1 of a new call, in the caller's transaction. */
export async function recordCall<P>(
  q: Queryable,
  c: { kind: StripeCallKind; orderId: string; requestId: string | null; params: P; amount?: number },
): Promise<StripeCallRow<P>> {
  const { rows } = await q.query<StripeCallRow<P>>(
    insertCall({
      id: newId('call'),
      kind: c.kind,
      orderId: c.orderId,
      requestId: c.requestId,
      params: c.params,
      amount: c.amount ?? null,
      leaseMs: CALL_LEASE_MS,
    }),
  );
  return rows[0]!;
}

/** The error a failed call answered with, raised again for a retry of the same request. */
export const storedFailure = (call: StripeCallRow<unknown>) => {
  const e = call.error ?? { status: 502, code: 'stripe_error', message: 'Stripe refused the request' };
  return new AppError(e.status, e.code, e.message, e.details ? { details: e.details } : {});
};

/**
 * Whether Stripe may accept the same call later: no answer at all (network), a 5xx, rate limiting, or a 409
 * for a concurrent request with the same key. Everything else is Stripe's final word on these params.
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

/** Marks the call failed with the error its request answers, now and on every retry. */
async function failCall(q: Queryable, call: Pick<StripeCallRow, 'id'>, error: AppError): Promise<AppError> {
  await q.query(
    markCallFailed(call.id, {
      status: error.status,
      code: error.code,
      message: error.message,
      ...(error.details ? { details: error.details } : {}),
    }),
  );
  return error;
}

/** What an API request brings to phase 1. */
export interface CallRequestPhase<P> {
  /** The request's Idempotency-Key row: a retry with the same key resumes the call its first try recorded. */
  requestId: string | null;
  /**
   * Phase 1's own work, in the transaction that records the call: checks and locks what the call depends on
   * and returns what to send; throwing refuses the request with nothing recorded.
   */
  begin(q: Queryable): Promise<{ orderId: string; params: P; amount?: number }>;
}

/** Phase 1 for an API request: the call its first try recorded, or a new one. */
export async function beginCall<P>(
  db: Db,
  kind: StripeCallKind,
  request: CallRequestPhase<P>,
): Promise<StripeCallRow<P>> {
  return db.tx(async (q) => {
    const earlier = request.requestId
      ? (await q.query<StripeCallRow<P>>(selectCallByRequest(kind, request.requestId))).rows[0]
      : undefined;
    return earlier ?? recordCall(q, { kind, requestId: request.requestId, ...(await request.begin(q)) });
  });
}

/** A call through all three phases for an API request. */
export async function runInPhases<P, R extends { id: string }, V>(
  db: Db,
  spec: StripeCallSpec<P, R, V>,
  request: CallRequestPhase<P>,
  hooks: PhaseHooks = {},
): Promise<V> {
  return finishCall(db, spec, await beginCall(db, spec.kind, request), hooks);
}

/** Phases 2 and 3 of a recorded call: for the request that recorded it, its retry, or the completer. */
export async function finishCall<P, R extends { id: string }, V>(
  db: Db,
  spec: StripeCallSpec<P, R, V>,
  call: StripeCallRow<P>,
  hooks: PhaseHooks = {},
): Promise<V> {
  if (call.status === 'done') return spec.view(call.response as unknown as R, call);
  if (call.status === 'failed') throw storedFailure(call);
  let made: R;
  try {
    made = await spec.call(call, (step) => stripeIdempotencyKey(call, step));
  } catch (err) {
    if (err instanceof AppError) throw await failCall(db, call, err);
    // The call stays pending: a retry of the request, or the completer, repeats it under the same key.
    if (isRetryableStripeError(err)) throw serviceUnavailable('Stripe', err);
    throw await failCall(db, call, spec.refused(err, call));
  }
  await hooks.afterStripeCall?.(call);
  const settled = await db.tx(async (q): Promise<{ view: V } | { error: AppError; undo: boolean }> => {
    const current = (await q.query<StripeCallRow<P>>(selectCallForUpdate(call.id))).rows[0]!;
    if (current.status === 'done') return { view: spec.view(current.response as unknown as R, current) };
    if (current.status === 'failed') return { error: storedFailure(current), undo: false };
    const refusal = await spec.settle?.(q, current, made);
    if (refusal) return { error: await failCall(q, current, refusal), undo: true };
    await q.query(markCallDone(call.id, made.id, made));
    return { view: spec.view(made, current) };
  });
  if ('view' in settled) return settled.view;
  if (settled.undo) await spec.undo?.(call, made).catch(() => {});
  throw settled.error;
}
