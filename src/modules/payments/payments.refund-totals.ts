import type { RefundRecord } from './payments.sql.js';

/**
 * The one rule for how much of an order's money is refunded, over what Stripe reported (DESIGN §3: cumulative
 * fields, never deltas). Pure, so that the webhook's total and the refund API's balance cannot disagree.
 */

const FAILED = new Set(['failed', 'canceled']);

/**
 * The records of one PaymentIntent of the order. `includeUnknown`: also refunds and charges Stripe named no
 * PaymentIntent for (they count for the order's own payment). A null `paymentIntentId` takes every record.
 */
function ofPayment(
  records: readonly RefundRecord[],
  paymentIntentId: string | null,
  includeUnknown: boolean,
) {
  return records.filter(
    (r) =>
      paymentIntentId === null ||
      r.payment_intent_id === paymentIntentId ||
      (includeUnknown && r.payment_intent_id === null),
  );
}

const sum = (records: readonly RefundRecord[]) => records.reduce((total, r) => total + r.amount, 0);

/** The refunds known by id that have not failed or been canceled (Stripe counts pending ones as refunded). */
export function countedRefunds(records: readonly RefundRecord[], paymentIntentId: string | null): number {
  return sum(
    ofPayment(records, paymentIntentId, true).filter(
      (r) => r.kind === 'refund' && !FAILED.has(r.status ?? ''),
    ),
  );
}

/**
 * What is refunded of one PaymentIntent: the refunds known by id that have not failed or been canceled, or,
 * when larger, the charges' running totals less the refunds known to have failed. The second covers refunds
 * told only through their charge; a running total told before a refund failed includes it, hence the
 * subtraction. Each input only moves one way (a refund's status by rank, a charge's total up), so the answer
 * does not depend on the order the events came in.
 */
export function refundedTotal(
  records: readonly RefundRecord[],
  paymentIntentId: string | null,
  includeUnknown: boolean,
): number {
  const mine = ofPayment(records, paymentIntentId, includeUnknown);
  const refunds = mine.filter((r) => r.kind === 'refund');
  const counted = sum(refunds.filter((r) => !FAILED.has(r.status ?? '')));
  const failed = sum(refunds.filter((r) => FAILED.has(r.status ?? '')));
  const charged = sum(mine.filter((r) => r.kind === 'charge'));
  return Math.max(counted, charged - failed, 0);
}
