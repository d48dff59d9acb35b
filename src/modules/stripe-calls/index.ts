import type { Db, Queryable } from '../../ports/db.js';
import { defineModule } from '../module.js';
import { type CallSpecs, stripeCallsCompleter } from './stripe-calls.completer.js';
import { type StripeCallKind, selectPendingCall, selectRefundCalls } from './stripe-calls.sql.js';

/**
 * Calls to Stripe that create objects (Checkout Sessions, refunds), made in atomic phases so that a retry or a
 * crash never makes one twice, and the completer that finishes what a crash left half done. Owns `stripe_calls`.
 */
export type { CallSpecs } from './stripe-calls.completer.js';
export {
  beginCall,
  type CallRequestPhase,
  finishCall,
  isMissingStripeObject,
  isRetryableStripeError,
  type PhaseHooks,
  recordCall,
  runInPhases,
  type StripeCallSpec,
  stripeIdempotencyKey,
} from './stripe-calls.phases.js';
export type { StripeCallKind, StripeCallRow } from './stripe-calls.sql.js';

/** Who asked for a call: the cause its changes are recorded under, and the API request a retry shares. */
export interface CallRequest {
  cause: string;
  /** The Idempotency-Key row of the request; a retry with the same key resumes the same call. */
  requestId: string | null;
}

/** Whether a call of `kind` on the order is still pending, other than those of request `exceptRequestId`. */
export async function hasPendingCall(
  q: Queryable,
  orderId: string,
  kind: StripeCallKind,
  exceptRequestId: string | null = null,
): Promise<boolean> {
  return (await q.query(selectPendingCall(orderId, kind, exceptRequestId))).rows.length > 0;
}

/** The order's refunds asked of Stripe and not refused, with the refund id once Stripe made it. */
export async function refundCallsOf(
  q: Queryable,
  orderId: string,
): Promise<Array<{ stripe_object_id: string | null; amount: number }>> {
  return (await q.query<{ stripe_object_id: string | null; amount: number }>(selectRefundCalls(orderId)))
    .rows;
}

/** `specs`: how each kind of call is finished, from the modules that make them. */
export function createStripeCallsModule(deps: { db: Db; specs: CallSpecs }) {
  return defineModule({
    name: 'stripe-calls',
    workers: () => [stripeCallsCompleter(deps.db, deps.specs)],
  });
}
