import type { z } from 'zod';
import type { Queryable } from '../../ports/db.js';
import { changeOrder, type OrderRow, PAID_STATUSES } from '../orders/index.js';
import type { ChargeDetails, PaymentFact } from './payments.facts.js';
import type { OrderLocator, PaymentResolution } from './payments.lookups.js';
import { ORDER_ID_METADATA_KEY } from './payments.objects.js';
import { insertChargeDetails, type RefundRecord, selectRefundRecords } from './payments.sql.js';

/**
 * What every event handler of the payments domain works with. Handlers run inside the event's transaction with
 * the order row locked, and are written so that applying them twice, or after a later event, changes nothing:
 * statuses only move forward (an order already further along is a no-op, not an error; only a failed refund
 * moves a refunded order back), refund totals are recomputed from effect rows rather than added to, and
 * effect rows are keyed by Stripe's own ids.
 */
export interface HandlerContext {
  q: Queryable;
  eventId: string;
  /** `stripe:evt_…`, recorded on every change the event makes. */
  cause: string;
  /** Whether a subscriber needs this order's charge evidence: only then is it worth asking Stripe. */
  wantsEvidence(order: OrderRow): boolean;
  /** Raises a payment fact to the subscribers, in this transaction. */
  raise(fact: PaymentFact): Promise<void>;
  /** What earlier lookups of this try found at Stripe. */
  resolved: PaymentResolution;
  /** Asks Stripe for a PaymentIntent's successful charge (outside the transaction, as a lookup). */
  chargeAtStripe(paymentIntentId: string): Promise<ChargeDetails | null>;
  /** Asks Stripe which Checkout Session made a PaymentIntent (outside the transaction, as a lookup). */
  sessionAtStripe(paymentIntentId: string): Promise<string | null>;
}

export type HandlerResult =
  /** `wake`: the order moved in a way that events waiting on it (refunds, disputes) may now apply. */
  | { status: 'done'; reason: string | null; wake: boolean }
  | { status: 'deferred'; reason: string }
  | { status: 'ignored'; reason: string }
  /** Something only Stripe can say is needed first; returned before the handler wrote anything. */
  | { status: 'lookup'; lookup: () => Promise<PaymentResolution> };

/** Money an event says was taken: by a session or a PaymentIntent. */
export interface TakenMoney {
  objectId: string;
  amount: number | null;
  currency: string | null;
  paymentIntentId: string | null;
}

/** A handler of an event that changes an order. */
export interface OrderEventHandler<T> {
  schema: z.ZodType<T>;
  locate(object: T): OrderLocator;
  apply(ctx: HandlerContext, order: OrderRow, object: T): Promise<HandlerResult>;
  /** The money the event says was taken, for the events that say so (flagged when it is not ours). */
  moneyTaken?(object: T): TakenMoney | null;
}

/** A handler of an event that only records what Stripe said, for no order in particular. */
export interface RecordingHandler<T> {
  schema: z.ZodType<T>;
  record(ctx: HandlerContext, object: T): Promise<HandlerResult>;
}

export const applied = (reason: string | null = null, wake = false): HandlerResult => ({
  status: 'done',
  reason,
  wake,
});

export const noChange = (why: string): HandlerResult => ({
  status: 'done',
  reason: `no change: ${why}`,
  wake: false,
});

export const isPaid = (order: OrderRow) => PAID_STATUSES.includes(order.status);

export const waitForPayment = (order: OrderRow): HandlerResult => ({
  status: 'deferred',
  reason: `waiting for the payment: order ${order.id} is ${order.status}`,
});

export const metadataOrderId = (metadata: Record<string, string>) => metadata[ORDER_ID_METADATA_KEY] ?? null;

/**
 * Adds a flag once per rule and Stripe object: the same mismatch reported by two events is one problem.
 * `wake`: events may be waiting for this flag.
 */
export async function flag(
  ctx: HandlerContext,
  order: OrderRow,
  entry: { rule: string; object_id: string } & Record<string, unknown>,
  wake = false,
): Promise<HandlerResult> {
  const known = order.flags.some((f) => f.rule === entry.rule && f.object_id === entry.object_id);
  if (!known)
    await changeOrder(ctx.q, order, { flags: [...order.flags, { ...entry, cause: ctx.cause }] }, ctx.cause);
  return applied(`flagged: ${entry.rule}`, wake);
}

/** What Stripe reported refunded on the order: its refunds and its charges' running totals. */
export async function refundRecords(q: Queryable, orderId: string): Promise<RefundRecord[]> {
  return (await q.query<RefundRecord>(selectRefundRecords(orderId))).rows;
}

/** Keeps what Stripe said of a successful charge; the first word stands (a charge's card does not change). */
export async function recordChargeDetails(
  ctx: Pick<HandlerContext, 'q' | 'eventId'>,
  details: ChargeDetails,
  paymentIntentId: string | null,
): Promise<void> {
  await ctx.q.query(
    insertChargeDetails({
      chargeId: details.charge_id,
      paymentIntentId,
      customerId: details.customer_id,
      cardFingerprint: details.card_fingerprint,
      riskLevel: details.risk_level,
      billingEmail: details.billing_email,
      eventId: ctx.eventId,
    }),
  );
}
