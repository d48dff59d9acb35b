import { otherOpenSessions, recordOutcome, sessionOfOrder, sessionsCharging } from '../checkout/index.js';
import {
  canTransition,
  changeOrder,
  type OrderChange,
  type OrderPatch,
  type OrderRow,
} from '../orders/index.js';
import type { ChargeDetails } from './payments.facts.js';
import {
  applied,
  flag,
  type HandlerContext,
  type HandlerResult,
  isPaid,
  noChange,
  recordChargeDetails,
  refundRecords,
} from './payments.handlers.js';
import { refundedTotal } from './payments.refund-totals.js';
import { selectChargeDetails } from './payments.sql.js';

/** A payment as the event that reports it tells it. */
export interface Payment {
  objectId: string;
  amount: number | null;
  currency: string | null;
  sessionId: string | null;
  paymentIntentId: string | null;
  customerId: string | null;
  buyerEmail: string | null;
}

/** Only ids the order does not have yet: an event that does not settle the payment never replaces them. */
export function missingIds(
  order: OrderRow,
  ids: { sessionId: string | null; paymentIntentId: string | null },
): OrderPatch {
  return {
    ...(ids.sessionId && !order.checkout_session_id ? { checkout_session_id: ids.sessionId } : {}),
    ...(ids.paymentIntentId && !order.payment_intent_id ? { payment_intent_id: ids.paymentIntentId } : {}),
  };
}

/**
 * Another PaymentIntent succeeded for an order already paid: the buyer was charged twice. Refunds of it are
 * noted on this flag; those that came first wait for it.
 */
async function flagSecondPayment(ctx: HandlerContext, order: OrderRow, p: Payment, paymentIntentId: string) {
  const records = await refundRecords(ctx.q, order.id);
  return flag(
    ctx,
    order,
    {
      rule: 'second_payment',
      object_id: paymentIntentId,
      amount: p.amount,
      currency: p.currency,
      amount_refunded: refundedTotal(records, paymentIntentId, false),
    },
    true,
  );
}

/**
 * A PaymentIntent does not name its session. If it charged what an earlier session of the order asked, that
 * session's own event says whether the order is paid by it: null when no such session exists.
 */
async function judgeBySessions(
  ctx: HandlerContext,
  order: OrderRow,
  p: Payment,
): Promise<HandlerResult | null> {
  const sessions = await sessionsCharging(ctx.q, order.id, p.amount, p.currency);
  if (sessions.some((s) => s.outcome === 'paid'))
    return noChange(`${p.objectId} was applied through its Checkout Session`);
  if (sessions.length === 0) return null;
  return {
    status: 'deferred',
    reason: `waiting for the Checkout Session of ${p.objectId}, which charged what ${sessions.map((s) => s.id).join(', ')} asked`,
  };
}

/**
 * Money was taken. The amount and currency must be what the payment's own Checkout Session asked, as our
 * checkout made it, or the order's when no session we know is named (DESIGN §7: prices come from the trusted
 * caller, and Stripe's figure is what was actually charged); otherwise the order is flagged, not paid. A
 * session that a newer one replaced may still have been paid (the buyer finished it as it was being
 * replaced): the order is then paid for what that session sold.
 */
export async function markPaid(ctx: HandlerContext, order: OrderRow, p: Payment): Promise<HandlerResult> {
  if (
    isPaid(order) &&
    p.paymentIntentId &&
    order.payment_intent_id &&
    p.paymentIntentId !== order.payment_intent_id
  )
    return flagSecondPayment(ctx, order, p, p.paymentIntentId);
  const own = p.sessionId ? await sessionOfOrder(ctx.q, order.id, p.sessionId) : null;
  const expected = own ?? order;
  if (p.amount !== expected.amount_total || p.currency !== expected.currency) {
    const bySessions = p.sessionId ? null : await judgeBySessions(ctx, order, p);
    if (bySessions) return bySessions;
    return flag(ctx, order, {
      rule: 'amount_mismatch',
      object_id: p.objectId,
      expected: { amount_total: expected.amount_total, currency: expected.currency },
      received: { amount_total: p.amount, currency: p.currency },
    });
  }
  // The evidence the captured fact carries, gathered before anything is written: it may need asking Stripe.
  const capturing = !isPaid(order) && canTransition(order.status, 'paid');
  const evidence = capturing ? await chargeEvidence(ctx, p.paymentIntentId, ctx.wantsEvidence(order)) : null;
  if (evidence && 'lookup' in evidence) return evidence.lookup;
  if (p.sessionId)
    await recordOutcome(ctx.q, {
      sessionId: p.sessionId,
      orderId: order.id,
      outcome: 'paid',
      eventId: ctx.eventId,
    });
  if (isPaid(order)) {
    await changeOrder(ctx.q, order, missingIds(order, p), ctx.cause);
    return noChange(`order is already ${order.status}`);
  }
  if (!canTransition(order.status, 'paid')) {
    // Only an expired order gets here: money arrived for an order whose current session had expired. That
    // needs a person (refund, or reopen the order), not a silent status jump.
    return flag(ctx, order, {
      rule: 'paid_while_expired',
      object_id: p.objectId,
      amount: p.amount,
      currency: p.currency,
    });
  }
  const change = (await changeOrder(
    ctx.q,
    order,
    // The payment's own session and PaymentIntent become the order's: an earlier declined try may have left
    // another PaymentIntent there. So does what the session sold, which a newer session may have changed.
    {
      ...(own
        ? { ...(own.order_fields as OrderPatch), amount_total: own.amount_total, currency: own.currency }
        : {}),
      status: 'paid',
      amount_paid: p.amount,
      ...(p.sessionId ? { checkout_session_id: p.sessionId } : {}),
      ...(p.paymentIntentId ? { payment_intent_id: p.paymentIntentId } : {}),
    },
    ctx.cause,
  )) as OrderChange;
  if (evidence) await raiseCaptured(ctx, change.order, p, evidence.charge);
  if (p.sessionId && own) {
    // An older session was paid while a newer one is still open at Stripe: someone must expire it before the
    // buyer pays twice (this transaction may not call Stripe).
    const open = await otherOpenSessions(ctx.q, order.id, p.sessionId);
    if (open.length > 0)
      await flag(ctx, change.order, { rule: 'newer_session_open', object_id: p.sessionId, sessions: open });
  }
  return applied(null, true);
}

/**
 * The successful charge of a payment being captured: recorded from its `charge.succeeded`, or, when that has
 * not arrived (events come in any order) and a subscriber needs it (`mayAsk`), asked of Stripe first, so that
 * the captured fact carries the same evidence whatever the order of delivery.
 */
async function chargeEvidence(
  ctx: HandlerContext,
  paymentIntentId: string | null,
  mayAsk: boolean,
): Promise<{ charge: ChargeDetails | null } | { lookup: HandlerResult }> {
  if (!paymentIntentId) return { charge: null };
  const recorded = (await ctx.q.query<ChargeDetails>(selectChargeDetails(paymentIntentId))).rows[0];
  if (recorded) return { charge: recorded };
  if (!mayAsk) return { charge: null };
  const found = ctx.resolved.charge;
  if (found === undefined) {
    return {
      lookup: {
        status: 'lookup',
        lookup: async () => ({ charge: await ctx.chargeAtStripe(paymentIntentId) }),
      },
    };
  }
  if (found) await recordChargeDetails(ctx, found, paymentIntentId);
  return { charge: found };
}

function raiseCaptured(ctx: HandlerContext, order: OrderRow, p: Payment, charge: ChargeDetails | null) {
  return ctx.raise({
    type: 'payment.captured',
    order,
    event_id: ctx.eventId,
    cause: ctx.cause,
    amount: order.amount_paid,
    currency: order.currency,
    checkout_session_id: order.checkout_session_id,
    payment_intent_id: order.payment_intent_id,
    customer_id: p.customerId ?? charge?.customer_id ?? null,
    buyer_email: p.buyerEmail ?? order.customer_email,
    buyer_ip: order.client_ip,
    charge,
  });
}
