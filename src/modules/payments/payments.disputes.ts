import { canChangeDispute, changeOrder, type DisputeStatus, type OrderRow } from '../orders/index.js';
import {
  applied,
  type HandlerContext,
  isPaid,
  noChange,
  type OrderEventHandler,
  waitForPayment,
} from './payments.handlers.js';
import { type Dispute, DisputeSchema, disputeStatusOf } from './payments.objects.js';
import { insertDispute, newestDisputeStatus, selectDispute, updateDisputeStatus } from './payments.sql.js';

const DISPUTE_RANK: Record<DisputeStatus, number> = { open: 0, won: 1, lost: 1 };

/**
 * Records the dispute's status, which only moves open → won | lost. Returns the steps it took, each raised as
 * a payment fact once the order shows it: opened, closed, or both for a "closed" that came before its "created".
 */
async function recordDispute(
  ctx: HandlerContext,
  order: OrderRow,
  dispute: Dispute,
  status: DisputeStatus,
): Promise<{
  known: { status: DisputeStatus } | undefined;
  opened: boolean;
  closedAs: 'won' | 'lost' | null;
}> {
  const decided = status === 'open' ? null : status;
  const known = (await ctx.q.query<{ status: DisputeStatus }>(selectDispute(dispute.id))).rows[0];
  if (!known) {
    await ctx.q.query(
      insertDispute({
        id: dispute.id,
        orderId: order.id,
        chargeId: dispute.charge,
        amount: dispute.amount,
        currency: dispute.currency,
        status,
        created: dispute.created,
        eventId: ctx.eventId,
      }),
    );
    return { known, opened: true, closedAs: decided };
  }
  if (DISPUTE_RANK[status] > DISPUTE_RANK[known.status]) {
    await ctx.q.query(updateDisputeStatus(dispute.id, status, ctx.eventId));
    return { known, opened: false, closedAs: decided };
  }
  return { known, opened: false, closedAs: null };
}

/** The order shows its newest dispute; from no dispute to a decided one it goes through `open`, as recorded. */
async function showNewestDispute(ctx: HandlerContext, order: OrderRow): Promise<OrderRow> {
  const target =
    (await ctx.q.query<{ status: DisputeStatus }>(newestDisputeStatus(order.id))).rows[0]?.status ?? null;
  let current = order;
  if (target === current.dispute_status) return current;
  if (!canChangeDispute(current.dispute_status, target))
    current = (await changeOrder(ctx.q, current, { dispute_status: 'open' }, ctx.cause))?.order ?? current;
  return (await changeOrder(ctx.q, current, { dispute_status: target }, ctx.cause))?.order ?? current;
}

/**
 * Disputes: the dispute row moves open → won | lost and never back; the order shows its newest dispute. The
 * facts say what happened to this dispute, whatever order its events came in.
 */
export const disputeChanged: OrderEventHandler<Dispute> = {
  schema: DisputeSchema,
  locate: (dispute) => ({ orderId: null, paymentIntentId: dispute.payment_intent, chargeId: dispute.charge }),
  async apply(ctx, order, dispute) {
    if (!isPaid(order)) return waitForPayment(order);
    const status = disputeStatusOf(dispute.status);
    const step = await recordDispute(ctx, order, dispute, status);
    const current = await showNewestDispute(ctx, order);
    const fact = { order: current, event_id: ctx.eventId, cause: ctx.cause, dispute_id: dispute.id };
    const money = { amount: dispute.amount, currency: dispute.currency };
    if (step.opened) await ctx.raise({ type: 'dispute.opened', ...fact, ...money });
    if (step.closedAs) await ctx.raise({ type: 'dispute.closed', ...fact, ...money, status: step.closedAs });
    return step.opened || step.closedAs || current !== order
      ? applied()
      : noChange(`dispute ${dispute.id} is already ${step.known?.status}`);
  },
};
