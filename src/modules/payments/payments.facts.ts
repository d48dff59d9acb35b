import type { Queryable } from '../../ports/db.js';
import type { OrderRow } from '../orders/index.js';

/**
 * The seam of payment facts: what happened to an order's money, raised by the payments domain inside the
 * transaction that applies the Stripe event, and consumed by subscribers in that same transaction (the
 * referral programme's commission ledger, fraud guards and audit). A subscriber's writes therefore commit
 * exactly when the order change does, once per event; if a subscriber throws, the whole event rolls back and
 * is retried. Subscribers use only the `q` they are given.
 */

/** What Stripe tells of the charge that captured a payment. */
export interface ChargeDetails {
  charge_id: string;
  customer_id: string | null;
  card_fingerprint: string | null;
  /** Stripe Radar's `risk_level`: `normal`, `elevated`, `highest`, or null when Radar did not score it. */
  risk_level: string | null;
  billing_email: string | null;
}

interface FactBase {
  /** The order after the change that raised the fact. */
  order: OrderRow;
  /** The Stripe event applying it. */
  event_id: string;
  /** `stripe:evt_…`: recorded on every effect, unique per event. */
  cause: string;
}

/** The order was paid: money was captured for it (once per order). */
export interface PaymentCaptured extends FactBase {
  type: 'payment.captured';
  amount: number;
  currency: string;
  checkout_session_id: string | null;
  payment_intent_id: string | null;
  /** The Stripe customer (`cus_…`), when the payment named one. */
  customer_id: string | null;
  buyer_email: string | null;
  /** The buyer's address as the shop gave it at checkout (`client_ip`). */
  buyer_ip: string | null;
  /**
   * The charge that took the money: the card's fingerprint and Radar's risk level. From its `charge.succeeded`,
   * or asked of Stripe when that has not arrived yet, so it does not depend on the order events come in. Null
   * only when Stripe shows no successful charge for the PaymentIntent.
   */
  charge: ChargeDetails | null;
}

/**
 * The order's refunded total rose: by a refund Stripe reported (`refund_id`), or by a charge's running total
 * when only `charge.refunded` told of it (`refund_id` null). `refunded_total` is the new cumulative total, so a
 * subscriber computes proportions from it rather than adding amounts up.
 */
export interface RefundSettled extends FactBase {
  type: 'refund.settled';
  refund_id: string | null;
  amount: number;
  refunded_total: number;
}

/** A refund failed or was canceled: its money is the merchant's again and the refunded total fell. */
export interface RefundReverted extends FactBase {
  type: 'refund.reverted';
  refund_id: string | null;
  amount: number;
  refunded_total: number;
}

export interface DisputeOpened extends FactBase {
  type: 'dispute.opened';
  dispute_id: string;
  amount: number;
  currency: string;
}

export interface DisputeClosed extends FactBase {
  type: 'dispute.closed';
  dispute_id: string;
  status: 'won' | 'lost';
  amount: number;
  currency: string;
}

export type PaymentFact = PaymentCaptured | RefundSettled | RefundReverted | DisputeOpened | DisputeClosed;

/** Receives every fact, in the applying transaction. Must be idempotent per `cause` and use only `q`. */
export type PaymentFactSubscriber = (q: Queryable, fact: PaymentFact) => Promise<void>;

/** Hands `fact` to every subscriber, in order, in the caller's transaction. */
export async function raiseFact(
  subscribers: readonly PaymentFactSubscriber[],
  q: Queryable,
  fact: PaymentFact,
): Promise<void> {
  for (const subscriber of subscribers) await subscriber(q, fact);
}
