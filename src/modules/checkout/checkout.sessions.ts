import type Stripe from 'stripe';
import type { Queryable } from '../../ports/db.js';
import { getOrder, type OrderRow } from '../orders/index.js';
import { hasPendingCall } from '../stripe-calls/index.js';
import { OPENABLE } from './checkout.create.js';
import {
  type CheckoutSessionRow,
  insertOutcome,
  selectOtherUnsupersededSessions,
  selectOutcome,
  selectSession,
  selectSessionsCharging,
} from './checkout.sql.js';

/**
 * What the checkout module knows of the sessions it made, for the payments module to judge a payment by. Each
 * runs in the caller's transaction.
 */

export type SessionOutcome = 'paid' | 'failed';

/** The session as our checkout made it for `orderId`; null for a session we do not know for that order. */
export async function sessionOfOrder(
  q: Queryable,
  orderId: string,
  sessionId: string,
): Promise<CheckoutSessionRow | null> {
  const row = (await q.query<CheckoutSessionRow>(selectSession(sessionId))).rows[0];
  return row && row.order_id === orderId ? row : null;
}

/**
 * Whether this service made `sessionId` for the order: its current session, or one checkout recorded for it.
 * Any other session naming the order (a Payment Link, another integration on the same Stripe account) is not
 * the order's to be paid by.
 */
export async function isOwnSession(
  q: Queryable,
  order: { id: string; checkout_session_id: string | null },
  sessionId: string,
): Promise<boolean> {
  return order.checkout_session_id === sessionId || (await sessionOfOrder(q, order.id, sessionId)) !== null;
}

/**
 * Whether a newer Checkout Session of the order replaced `sessionId`: checkout marks the sessions it expired
 * when it stores the new one, so what happens to a replaced session no longer says anything about the order.
 */
export async function wasReplaced(
  q: Queryable,
  order: { id: string; checkout_session_id: string | null },
  sessionId: string,
): Promise<boolean> {
  if (order.checkout_session_id === sessionId) return false;
  return ((await sessionOfOrder(q, order.id, sessionId))?.superseded_at ?? null) !== null;
}

/** The order's sessions a buyer may still pay, other than `sessionId`. */
export async function otherOpenSessions(q: Queryable, orderId: string, sessionId: string): Promise<string[]> {
  return (await q.query<{ id: string }>(selectOtherUnsupersededSessions(orderId, sessionId))).rows.map(
    (r) => r.id,
  );
}

/** The order's sessions that asked exactly this amount and currency, with how each one's payment ended. */
export async function sessionsCharging(
  q: Queryable,
  orderId: string,
  amount: number | null,
  currency: string | null,
): Promise<Array<{ id: string; outcome: SessionOutcome | null }>> {
  return (
    await q.query<{ id: string; outcome: SessionOutcome | null }>(
      selectSessionsCharging(orderId, amount, currency),
    )
  ).rows;
}

export async function outcomeOf(q: Queryable, sessionId: string): Promise<SessionOutcome | null> {
  return (await q.query<{ outcome: SessionOutcome }>(selectOutcome(sessionId))).rows[0]?.outcome ?? null;
}

/** Records how the session's payment ended, once: the first word stands (a late "completed" cannot revive it). */
export async function recordOutcome(
  q: Queryable,
  o: { sessionId: string; orderId: string; outcome: SessionOutcome; eventId: string },
): Promise<void> {
  await q.query(insertOutcome(o));
}

/** A new session for the order is being made right now (its Stripe call is pending). */
export const newSessionUnderWay = (q: Queryable, orderId: string) =>
  hasPendingCall(q, orderId, 'checkout_session');

/** What the success page shows. */
export interface SessionSeen {
  order: OrderRow | null;
  /** Stripe reports the session paid; the order itself waits for the webhook. */
  paymentReceived: boolean;
}

/**
 * What the success page may say about a session: its order, and whether Stripe already reports the payment
 * while our webhook has not confirmed it yet. Reads only; the order changes through webhooks.
 */
export async function describeSession(
  db: Queryable,
  stripe: Stripe,
  sessionId: string,
): Promise<SessionSeen> {
  const row = (await db.query<CheckoutSessionRow>(selectSession(sessionId))).rows[0];
  // Only sessions we made are looked up at Stripe: the page is public, and any other id would let anyone
  // spend our Stripe rate limit.
  const order = row ? await getOrder(db, row.order_id) : null;
  if (!order || !OPENABLE.includes(order.status)) return { order, paymentReceived: false };
  // A buyer may land here before the webhook: Stripe's view of the session says "payment received".
  const session = await stripe.checkout.sessions.retrieve(sessionId).catch(() => null);
  return { order, paymentReceived: session?.payment_status === 'paid' };
}
