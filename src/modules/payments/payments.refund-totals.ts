import { refundStatusRank } from './payments.objects.js';
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

/** A refund this service asked Stripe for and Stripe did not refuse; `stripe_object_id` once Stripe answered. */
export interface RefundCall {
  stripe_object_id: string | null;
  amount: number;
}

/**
 * Every refund of the order known by id, each once: those Stripe reported, those Stripe lists that this
 * service did not ask for (`elsewhere`: made in the dashboard, told perhaps only through their charge's running
 * total, perhaps not at all yet), and our own calls Stripe has not reported. A charge's running total is left
 * out: it says how much, not which refunds, so it cannot be added to refunds known by id without counting
 * some twice. Told of twice, a refund keeps its furthest status (one that failed stays failed). A call not yet
 * answered has no id and counts on its own: Stripe may already have made it.
 */
export function knownRefunds(
  reported: readonly RefundRecord[],
  elsewhere: readonly RefundRecord[],
  calls: readonly RefundCall[],
  paymentIntentId: string | null,
): RefundRecord[] {
  const byId = new Map<string, RefundRecord>();
  for (const r of [...reported, ...elsewhere]) {
    if (r.kind !== 'refund') continue;
    const known = byId.get(r.id);
    if (!known || refundStatusRank(r.status ?? '') > refundStatusRank(known.status ?? '')) byId.set(r.id, r);
  }
  const unreported = calls.flatMap((c, i): RefundRecord[] =>
    c.stripe_object_id !== null && byId.has(c.stripe_object_id)
      ? []
      : [
          {
            kind: 'refund',
            id: c.stripe_object_id ?? `unanswered call ${i}`,
            payment_intent_id: paymentIntentId,
            amount: c.amount,
            status: 'pending',
          },
        ],
  );
  return [...byId.values(), ...unreported];
}

/**
 * What is left to refund of a payment: what was paid less the larger of the webhook's total (`refundedTotal`,
 * kept on the order, which a charge's running total may have raised) and the refunds known by id that have
 * not failed. Never below zero.
 */
export function refundBalance(
  amountPaid: number,
  amountRefunded: number,
  known: readonly RefundRecord[],
  paymentIntentId: string | null,
): number {
  return Math.max(0, amountPaid - Math.max(amountRefunded, countedRefunds(known, paymentIntentId)));
}
