import {
  isOwnSession,
  newSessionUnderWay,
  outcomeOf,
  recordOutcome,
  wasReplaced,
} from '../checkout/index.js';
import { changeOrder, type OrderRow } from '../orders/index.js';
import { markPaid, missingIds, type Payment } from './payments.capture.js';
import {
  flagForeignPayment,
  foreignSession,
  sessionMoney,
  sessionOfPaymentIntent,
} from './payments.foreign.js';
import {
  applied,
  type HandlerContext,
  type HandlerResult,
  isPaid,
  metadataOrderId,
  noChange,
  type OrderEventHandler,
} from './payments.handlers.js';
import type { OrderLocator } from './payments.lookups.js';
import { type PaymentIntent, PaymentIntentSchema, type Session, SessionSchema } from './payments.objects.js';

/** What Checkout Session and PaymentIntent events mean for an order: paid, processing, failed or expired. */

const sessionLocator = (s: Session): OrderLocator => ({
  orderId: s.client_reference_id ?? metadataOrderId(s.metadata),
  paymentIntentId: s.payment_intent,
  chargeId: null,
});

const sessionPayment = (s: Session): Payment => ({
  objectId: s.id,
  amount: s.amount_total,
  currency: s.currency,
  sessionId: s.id,
  paymentIntentId: s.payment_intent,
  customerId: s.customer,
  buyerEmail: s.customer_details?.email ?? s.customer_email ?? null,
});

const replacedBy = (sessionId: string) => noChange(`${sessionId} was replaced by a newer Checkout Session`);

const isPaidSession = (s: Session) => s.payment_status === 'paid';

export const checkoutCompleted: OrderEventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  moneyTaken: (session) => (isPaidSession(session) ? sessionMoney(session) : null),
  async apply(ctx, order, session) {
    if (!(await isOwnSession(ctx.q, order, session.id)))
      return foreignSession(ctx, order, session, isPaidSession(session));
    if (isPaidSession(session)) return markPaid(ctx, order, sessionPayment(session));
    // Completed but unpaid: a delayed method (bank debit) whose result comes later.
    const outcome = await outcomeOf(ctx.q, session.id);
    if (outcome)
      return noChange(`the session's payment already ${outcome === 'paid' ? 'succeeded' : 'failed'}`);
    // Checkout replaces a completed session only once its delayed payment has failed.
    if (await wasReplaced(ctx.q, order, session.id)) return replacedBy(session.id);
    if (order.status !== 'awaiting_payment' && order.status !== 'payment_failed')
      return noChange(`order is already ${order.status}`);
    await changeOrder(
      ctx.q,
      order,
      {
        status: 'processing',
        ...missingIds(order, { sessionId: session.id, paymentIntentId: session.payment_intent }),
      },
      ctx.cause,
    );
    return applied();
  },
};

export const asyncPaymentSucceeded: OrderEventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  moneyTaken: sessionMoney,
  async apply(ctx, order, session) {
    if (!(await isOwnSession(ctx.q, order, session.id))) return foreignSession(ctx, order, session, true);
    return markPaid(ctx, order, sessionPayment(session));
  },
};

export const asyncPaymentFailed: OrderEventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  async apply(ctx, order, session) {
    if (!(await isOwnSession(ctx.q, order, session.id))) return foreignSession(ctx, order, session, false);
    // Recorded first, whatever the order's status: it is what stops a late "completed" from reviving the session.
    await recordOutcome(ctx.q, {
      sessionId: session.id,
      orderId: order.id,
      outcome: 'failed',
      eventId: ctx.eventId,
    });
    if (await wasReplaced(ctx.q, order, session.id)) return replacedBy(session.id);
    if (order.status !== 'awaiting_payment' && order.status !== 'processing')
      return noChange(`order is already ${order.status}`);
    await changeOrder(ctx.q, order, { status: 'payment_failed' }, ctx.cause);
    return applied();
  },
};

export const checkoutExpired: OrderEventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  async apply(ctx, order, session) {
    if (!(await isOwnSession(ctx.q, order, session.id))) return foreignSession(ctx, order, session, false);
    // A replaced session expiring says nothing about the order, which has a newer one.
    if (order.checkout_session_id !== session.id) {
      return (await wasReplaced(ctx.q, order, session.id))
        ? replacedBy(session.id)
        : noChange(`${session.id} is not the order's current session`);
    }
    if (order.status !== 'awaiting_payment' && order.status !== 'payment_failed')
      return noChange(`order is already ${order.status}`);
    // Checkout expires the current session just before it makes the next one, so this expiry may arrive before
    // the order points at the new session. It waits for the call, which wakes it when done.
    if (await newSessionUnderWay(ctx.q, order.id)) {
      return {
        status: 'deferred',
        reason: `a new Checkout Session for order ${order.id} is being made to replace ${session.id}`,
      };
    }
    await changeOrder(ctx.q, order, { status: 'expired' }, ctx.cause);
    return applied();
  },
};

const paymentIntentLocator = (pi: PaymentIntent): OrderLocator => ({
  orderId: metadataOrderId(pi.metadata),
  paymentIntentId: pi.id,
  chargeId: null,
});

const piMoney = (pi: PaymentIntent) => ({
  objectId: pi.id,
  amount: pi.amount_received ?? pi.amount,
  currency: pi.currency,
  paymentIntentId: pi.id,
});

/**
 * A PaymentIntent names no session, and metadata naming an order proves nothing (anyone on the account can
 * write it). Unless it is the order's known PaymentIntent, the session that made it is asked of Stripe: the
 * order's own session, one of ours that it replaced, or none of ours (foreign).
 */
async function sessionBehind(
  ctx: HandlerContext,
  order: OrderRow,
  pi: PaymentIntent,
): Promise<{ own: string } | { foreign: string } | { lookup: HandlerResult }> {
  const made = sessionOfPaymentIntent(ctx, pi.id);
  if ('lookup' in made) return made;
  if (made.sessionId && (await isOwnSession(ctx.q, order, made.sessionId))) return { own: made.sessionId };
  return {
    foreign: made.sessionId
      ? `${pi.id} was made by ${made.sessionId}, not a Checkout Session this service created for order ${order.id}`
      : `${pi.id} was not made by a Checkout Session of this service`,
  };
}

export const paymentIntentSucceeded: OrderEventHandler<PaymentIntent> = {
  schema: PaymentIntentSchema,
  locate: paymentIntentLocator,
  moneyTaken: piMoney,
  async apply(ctx, order, pi) {
    const payment: Payment = {
      ...piMoney(pi),
      sessionId: null,
      customerId: pi.customer,
      buyerEmail: null,
    };
    // A paid order is not moved by it either way: another PaymentIntent is flagged as a second payment.
    if (isPaid(order) || pi.id === order.payment_intent_id) return markPaid(ctx, order, payment);
    const behind = await sessionBehind(ctx, order, pi);
    if ('lookup' in behind) return behind.lookup;
    if ('foreign' in behind)
      return flagForeignPayment(ctx, order, { ...piMoney(pi), account: null, why: behind.foreign });
    return markPaid(ctx, order, { ...payment, sessionId: behind.own });
  },
};

export const paymentIntentFailed: OrderEventHandler<PaymentIntent> = {
  schema: PaymentIntentSchema,
  locate: paymentIntentLocator,
  async apply(ctx, order, pi) {
    // A declined try on an open session. Once the session completed (processing), only the session's own async
    // result decides: a PaymentIntent failure then is either that same result or an older decline delivered
    // late, and the two cannot be told apart from this event.
    if (order.status !== 'awaiting_payment') return noChange(`order is already ${order.status}`);
    if (pi.id !== order.payment_intent_id) {
      // Only a decline on the order's current session says its payment failed: not one on a session that a
      // newer one replaced, nor one on a session this service did not make.
      const behind = await sessionBehind(ctx, order, pi);
      if ('lookup' in behind) return behind.lookup;
      if ('foreign' in behind) return { status: 'ignored', reason: behind.foreign };
      if (behind.own !== order.checkout_session_id)
        return noChange(`${pi.id} was declined on ${behind.own}, not the order's current session`);
    }
    await changeOrder(
      ctx.q,
      order,
      { status: 'payment_failed', ...missingIds(order, { sessionId: null, paymentIntentId: pi.id }) },
      ctx.cause,
    );
    return applied();
  },
};
