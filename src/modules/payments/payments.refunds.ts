import { changeOrder, type OrderChange, type OrderRow, statusAfterRefund } from '../orders/index.js';
import {
  applied,
  type HandlerContext,
  type HandlerResult,
  isPaid,
  metadataOrderId,
  noChange,
  type OrderEventHandler,
  type RecordingHandler,
  recordChargeDetails,
  refundRecords,
  waitForPayment,
} from './payments.handlers.js';
import { chargeDetailsOf } from './payments.lookups.js';
import {
  type Charge,
  ChargeSchema,
  type Refund,
  RefundSchema,
  refundStatusRank,
} from './payments.objects.js';
import { refundedTotal } from './payments.refund-totals.js';
import { insertRefund, selectRefund, updateRefundStatus, upsertChargeRefunded } from './payments.sql.js';

/**
 * What refunds mean for an order. The order's amount_refunded is recomputed from what Stripe told of its
 * PaymentIntent's refunds and charges (`refundedTotal`), never added to: the same in any order and under any
 * duplication. It falls when a refund fails, since that money stays with the merchant, and the status follows
 * it (refunded, partially_refunded, or paid again). Each change of the total is raised as a payment fact.
 */
async function applyRefundTotal(
  ctx: HandlerContext,
  order: OrderRow,
  refundId: string | null,
): Promise<HandlerResult> {
  const total = refundedTotal(await refundRecords(ctx.q, order.id), order.payment_intent_id, true);
  if (total === order.amount_refunded) return noChange('refunds already counted');
  const change = (await changeOrder(
    ctx.q,
    order,
    { amount_refunded: total, status: statusAfterRefund(order.amount_paid, total) },
    ctx.cause,
  )) as OrderChange;
  const moved = total - order.amount_refunded;
  await ctx.raise({
    type: moved > 0 ? 'refund.settled' : 'refund.reverted',
    order: change.order,
    event_id: ctx.eventId,
    cause: ctx.cause,
    refund_id: refundId,
    amount: Math.abs(moved),
    refunded_total: total,
  });
  return applied();
}

/** The PaymentIntent a refund or charge is of, when it is known and not the order's own. */
const otherPaymentIntent = (order: OrderRow, paymentIntentId: string | null) =>
  paymentIntentId && order.payment_intent_id && paymentIntentId !== order.payment_intent_id
    ? paymentIntentId
    : null;

/**
 * A refund of another PaymentIntent than the order's (a second payment, flagged as such) gives back that
 * payment's money, not the order's: it is noted on the second_payment flag, and amount_refunded is left alone.
 */
async function noteSecondPaymentRefund(
  ctx: HandlerContext,
  order: OrderRow,
  paymentIntentId: string,
): Promise<HandlerResult> {
  const flagged = order.flags.find((f) => f.rule === 'second_payment' && f.object_id === paymentIntentId);
  if (!flagged) {
    return {
      status: 'deferred',
      reason: `waiting for the payment of ${paymentIntentId}, which is not order ${order.id}'s PaymentIntent`,
    };
  }
  const total = refundedTotal(await refundRecords(ctx.q, order.id), paymentIntentId, false);
  if (flagged.amount_refunded === total) return noChange(`refunds of ${paymentIntentId} already noted`);
  const flags = order.flags.map((f) => (f === flagged ? { ...f, amount_refunded: total } : f));
  await changeOrder(ctx.q, order, { flags }, ctx.cause);
  return applied(`a refund of the second payment ${paymentIntentId}, not of the order`);
}

export const chargeRefunded: OrderEventHandler<Charge> = {
  schema: ChargeSchema,
  locate: (charge) => ({
    orderId: metadataOrderId(charge.metadata),
    paymentIntentId: charge.payment_intent,
    chargeId: charge.id,
  }),
  async apply(ctx, order, charge) {
    if (!isPaid(order)) return waitForPayment(order);
    await ctx.q.query(
      upsertChargeRefunded({
        id: charge.id,
        orderId: order.id,
        paymentIntentId: charge.payment_intent,
        amountRefunded: charge.amount_refunded,
        eventId: ctx.eventId,
      }),
    );
    const other = otherPaymentIntent(order, charge.payment_intent);
    return other ? noteSecondPaymentRefund(ctx, order, other) : applyRefundTotal(ctx, order, null);
  },
};

export const refundChanged: OrderEventHandler<Refund> = {
  schema: RefundSchema,
  locate: (refund) => ({
    orderId: metadataOrderId(refund.metadata),
    paymentIntentId: refund.payment_intent,
    chargeId: refund.charge,
  }),
  async apply(ctx, order, refund) {
    if (!isPaid(order)) return waitForPayment(order);
    const status = refund.status ?? 'pending';
    const known = (await ctx.q.query<{ status: string }>(selectRefund(refund.id))).rows[0];
    if (!known) {
      await ctx.q.query(
        insertRefund({
          id: refund.id,
          orderId: order.id,
          chargeId: refund.charge,
          paymentIntentId: refund.payment_intent,
          amount: refund.amount,
          currency: refund.currency,
          status,
          eventId: ctx.eventId,
        }),
      );
    } else if (refundStatusRank(status) > refundStatusRank(known.status)) {
      await ctx.q.query(updateRefundStatus(refund.id, status, ctx.eventId));
    }
    const other = otherPaymentIntent(order, refund.payment_intent);
    return other ? noteSecondPaymentRefund(ctx, order, other) : applyRefundTotal(ctx, order, refund.id);
  },
};

/**
 * A successful charge: who paid and with what card, as Stripe Radar saw it, for the payment facts. It needs no
 * order (it usually comes before the event that names one), so it is only recorded.
 */
export const chargeSucceeded: RecordingHandler<Charge> = {
  schema: ChargeSchema,
  async record(ctx, charge) {
    await recordChargeDetails(ctx, chargeDetailsOf(charge), charge.payment_intent);
    return applied();
  },
};
