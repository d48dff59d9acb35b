import type { z } from 'zod';
import type { Queryable } from '../../ports/db.js';
import { selectPendingCheckout } from '../attempts/attempts.sql.js';
import {
  type CheckoutSessionRow,
  type SessionCharge,
  selectOtherUnsupersededSessions,
  selectSession,
  selectSessionCharge,
} from '../checkout/checkout.sql.js';
import {
  canChangeDispute,
  canTransition,
  type DisputeStatus,
  PAID_STATUSES,
  statusAfterRefund,
} from '../orders/orders.machine.js';
import type { OrderChange, OrderPatch, OrderRow, OrdersService } from '../orders/orders.service.js';
import type { CommissionHooks } from './webhooks.commissions.js';
import {
  type Charge,
  ChargeSchema,
  type Dispute,
  DisputeSchema,
  disputeStatusOf,
  ORDER_ID_METADATA_KEY,
  type PaymentIntent,
  PaymentIntentSchema,
  type Refund,
  RefundSchema,
  refundStatusRank,
  type Session,
  SessionSchema,
} from './webhooks.event.js';
import {
  insertCheckoutOutcome,
  insertDispute,
  insertRefund,
  newestDisputeStatus,
  refundedTotal,
  selectCheckoutOutcome,
  selectDispute,
  selectRefund,
  sessionsCharging,
  updateDisputeStatus,
  updateRefundStatus,
  upsertChargeRefunded,
} from './webhooks.sql.js';

/**
 * One function per Stripe event type (DESIGN §3), each run inside the event's transaction with the order row
 * locked. Every handler is written so that applying it twice, or after a later event, changes nothing:
 * statuses only move forward (an order already further along is a no-op, not an error; only a failed refund
 * moves a refunded order back), refund totals are recomputed from effect rows rather than added to, and
 * effect rows are keyed by Stripe's own ids.
 */

export interface HandlerContext {
  q: Queryable;
  orders: OrdersService;
  commissions: CommissionHooks;
  eventId: string;
  /** `stripe:evt_…`, recorded on every change the event makes. */
  cause: string;
}

export type HandlerResult =
  /** `wake`: the order moved in a way that events waiting on it (refunds, disputes) may now apply. */
  | { status: 'done'; reason: string | null; wake: boolean }
  | { status: 'deferred'; reason: string }
  | { status: 'ignored'; reason: string };

/** Where an event's order is: named outright, or to be found through its PaymentIntent or Charge. */
export interface OrderLocator {
  orderId: string | null;
  paymentIntentId: string | null;
  chargeId: string | null;
}

export interface EventHandler<T> {
  schema: z.ZodType<T>;
  locate(object: T): OrderLocator;
  apply(ctx: HandlerContext, order: OrderRow, object: T): Promise<HandlerResult>;
}

const applied = (reason: string | null = null, wake = false): HandlerResult => ({
  status: 'done',
  reason,
  wake,
});
const noChange = (why: string): HandlerResult => ({
  status: 'done',
  reason: `no change: ${why}`,
  wake: false,
});
const isPaid = (order: OrderRow) => PAID_STATUSES.includes(order.status);
const waitForPayment = (order: OrderRow): HandlerResult => ({
  status: 'deferred',
  reason: `waiting for the payment: order ${order.id} is ${order.status}`,
});

const metadataOrderId = (metadata: Record<string, string>) => metadata[ORDER_ID_METADATA_KEY] ?? null;

/**
 * Adds a flag once per rule and Stripe object: the same mismatch reported by two events is one problem.
 * `wake`: events may be waiting for this flag.
 */
async function flag(
  ctx: HandlerContext,
  order: OrderRow,
  entry: { rule: string; object_id: string } & Record<string, unknown>,
  wake = false,
) {
  const known = order.flags.some((f) => f.rule === entry.rule && f.object_id === entry.object_id);
  if (!known)
    await ctx.orders.changeOrder(
      ctx.q,
      order,
      { flags: [...order.flags, { ...entry, cause: ctx.cause }] },
      ctx.cause,
    );
  return applied(`flagged: ${entry.rule}`, wake);
}

/** The session as our checkout made it for this order; null for a session we do not know for it. */
async function sessionCharge(
  ctx: HandlerContext,
  order: OrderRow,
  sessionId: string,
): Promise<SessionCharge | null> {
  const row = (await ctx.q.query<SessionCharge>(selectSessionCharge(sessionId))).rows[0];
  return row && row.order_id === order.id ? row : null;
}

/**
 * Whether a newer Checkout Session of the order replaced `sessionId`: checkout marks the sessions it expired
 * when it stores the new one, so what happens to a replaced session no longer says anything about the order.
 */
async function replaced(ctx: HandlerContext, order: OrderRow, sessionId: string): Promise<boolean> {
  if (order.checkout_session_id === sessionId) return false;
  const row = (await ctx.q.query<CheckoutSessionRow>(selectSession(sessionId))).rows[0];
  return row !== undefined && row.order_id === order.id && row.superseded_at !== null;
}

/** What is refunded of one of the order's PaymentIntents (the order's own also counts refunds naming none). */
async function refundedOf(ctx: HandlerContext, order: OrderRow, paymentIntentId: string | null) {
  const own = paymentIntentId === order.payment_intent_id;
  const { rows } = await ctx.q.query<{ total: number }>(refundedTotal(order.id, paymentIntentId, own));
  return rows[0]?.total ?? 0;
}

/** Only ids the order does not have yet: an event that does not settle the payment never replaces them. */
function missingIds(
  order: OrderRow,
  ids: { sessionId: string | null; paymentIntentId: string | null },
): OrderPatch {
  return {
    ...(ids.sessionId && !order.checkout_session_id ? { checkout_session_id: ids.sessionId } : {}),
    ...(ids.paymentIntentId && !order.payment_intent_id ? { payment_intent_id: ids.paymentIntentId } : {}),
  };
}

interface Payment {
  objectId: string;
  amount: number | null;
  currency: string | null;
  sessionId: string | null;
  paymentIntentId: string | null;
}

/**
 * Money was taken. The amount and currency must be what the payment's own Checkout Session asked, as our
 * checkout made it, or the order's when no session we know is named (DESIGN §7: prices come from the trusted
 * caller, and Stripe's figure is what was actually charged); otherwise the order is flagged, not paid. A
 * session that a newer one replaced may still have been paid (the buyer finished it as it was being
 * replaced): the order is then paid for what that session sold.
 */
async function markPaid(ctx: HandlerContext, order: OrderRow, p: Payment): Promise<HandlerResult> {
  if (
    isPaid(order) &&
    p.paymentIntentId &&
    order.payment_intent_id &&
    p.paymentIntentId !== order.payment_intent_id
  ) {
    // Another PaymentIntent succeeded for an order already paid: the buyer was charged twice. Refunds of it
    // are noted on this flag; those that came first wait for it.
    return flag(
      ctx,
      order,
      {
        rule: 'second_payment',
        object_id: p.paymentIntentId,
        amount: p.amount,
        currency: p.currency,
        amount_refunded: await refundedOf(ctx, order, p.paymentIntentId),
      },
      true,
    );
  }
  const own = p.sessionId ? await sessionCharge(ctx, order, p.sessionId) : null;
  const expected = own ?? order;
  if (p.amount !== expected.amount_total || p.currency !== expected.currency) {
    if (!p.sessionId) {
      // A PaymentIntent does not name its session. If it charged what an earlier session of the order asked,
      // that session's own event says whether the order is paid by it.
      const sessions = (
        await ctx.q.query<{ id: string; outcome: string | null }>(
          sessionsCharging(order.id, p.amount, p.currency),
        )
      ).rows;
      if (sessions.some((s) => s.outcome === 'paid'))
        return noChange(`${p.objectId} was applied through its Checkout Session`);
      if (sessions.length > 0) {
        return {
          status: 'deferred',
          reason: `waiting for the Checkout Session of ${p.objectId}, which charged what ${sessions.map((s) => s.id).join(', ')} asked`,
        };
      }
    }
    return flag(ctx, order, {
      rule: 'amount_mismatch',
      object_id: p.objectId,
      expected: { amount_total: expected.amount_total, currency: expected.currency },
      received: { amount_total: p.amount, currency: p.currency },
    });
  }
  if (p.sessionId) {
    await ctx.q.query(
      insertCheckoutOutcome({
        sessionId: p.sessionId,
        orderId: order.id,
        outcome: 'paid',
        eventId: ctx.eventId,
      }),
    );
  }
  if (isPaid(order)) {
    await ctx.orders.changeOrder(ctx.q, order, missingIds(order, p), ctx.cause);
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
  const change = (await ctx.orders.changeOrder(
    ctx.q,
    order,
    // The payment's own session and PaymentIntent become the order's: an earlier declined attempt may have
    // left another PaymentIntent there. So does what the session sold, which a newer session may have changed.
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
  await ctx.commissions.accrueCommission(ctx.q, change.order, ctx.cause);
  if (p.sessionId && own) {
    // An older session was paid while a newer one is still open at Stripe: someone must expire it before the
    // buyer pays twice (this transaction may not call Stripe).
    const open = (
      await ctx.q.query<{ id: string }>(selectOtherUnsupersededSessions(order.id, p.sessionId))
    ).rows.map((r) => r.id);
    if (open.length > 0)
      await flag(ctx, change.order, { rule: 'newer_session_open', object_id: p.sessionId, sessions: open });
  }
  return applied(null, true);
}

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
});

const checkoutCompleted: EventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  async apply(ctx, order, session) {
    if (session.payment_status === 'paid') return markPaid(ctx, order, sessionPayment(session));
    // Completed but unpaid: a delayed method (bank debit) whose result comes later.
    const outcome = (await ctx.q.query<{ outcome: string }>(selectCheckoutOutcome(session.id))).rows[0]
      ?.outcome;
    if (outcome)
      return noChange(`the session's payment already ${outcome === 'paid' ? 'succeeded' : 'failed'}`);
    // Checkout replaces a completed session only once its delayed payment has failed.
    if (await replaced(ctx, order, session.id))
      return noChange(`${session.id} was replaced by a newer Checkout Session`);
    if (order.status !== 'awaiting_payment' && order.status !== 'payment_failed') {
      return noChange(`order is already ${order.status}`);
    }
    await ctx.orders.changeOrder(
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

const asyncPaymentSucceeded: EventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  apply: (ctx, order, session) => markPaid(ctx, order, sessionPayment(session)),
};

const asyncPaymentFailed: EventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  async apply(ctx, order, session) {
    // Recorded first, whatever the order's status: it is what stops a late "completed" from reviving the session.
    await ctx.q.query(
      insertCheckoutOutcome({
        sessionId: session.id,
        orderId: order.id,
        outcome: 'failed',
        eventId: ctx.eventId,
      }),
    );
    if (await replaced(ctx, order, session.id))
      return noChange(`${session.id} was replaced by a newer Checkout Session`);
    if (order.status !== 'awaiting_payment' && order.status !== 'processing') {
      return noChange(`order is already ${order.status}`);
    }
    await ctx.orders.changeOrder(ctx.q, order, { status: 'payment_failed' }, ctx.cause);
    return applied();
  },
};

const checkoutExpired: EventHandler<Session> = {
  schema: SessionSchema,
  locate: sessionLocator,
  async apply(ctx, order, session) {
    // A replaced session expiring says nothing about the order, which has a newer one.
    if (order.checkout_session_id !== session.id) {
      return noChange(
        (await replaced(ctx, order, session.id))
          ? `${session.id} was replaced by a newer Checkout Session`
          : `${session.id} is not the order's current session`,
      );
    }
    if (order.status !== 'awaiting_payment' && order.status !== 'payment_failed') {
      return noChange(`order is already ${order.status}`);
    }
    // Checkout expires the current session just before it makes the next one, so this expiry may arrive
    // before the order points at the new session. It waits for the attempt, which wakes it when done.
    if ((await ctx.q.query(selectPendingCheckout(order.id))).rows.length > 0) {
      return {
        status: 'deferred',
        reason: `a new Checkout Session for order ${order.id} is being made to replace ${session.id}`,
      };
    }
    await ctx.orders.changeOrder(ctx.q, order, { status: 'expired' }, ctx.cause);
    return applied();
  },
};

const paymentIntentLocator = (pi: PaymentIntent): OrderLocator => ({
  orderId: metadataOrderId(pi.metadata),
  paymentIntentId: pi.id,
  chargeId: null,
});

const paymentIntentSucceeded: EventHandler<PaymentIntent> = {
  schema: PaymentIntentSchema,
  locate: paymentIntentLocator,
  apply: (ctx, order, pi) =>
    markPaid(ctx, order, {
      objectId: pi.id,
      amount: pi.amount_received ?? pi.amount,
      currency: pi.currency,
      sessionId: null,
      paymentIntentId: pi.id,
    }),
};

const paymentIntentFailed: EventHandler<PaymentIntent> = {
  schema: PaymentIntentSchema,
  locate: paymentIntentLocator,
  async apply(ctx, order, pi) {
    // A declined attempt on an open session. Once the session completed (processing), only the session's own
    // async result decides: a PaymentIntent failure then is either that same result or an older decline
    // delivered late, and the two cannot be told apart from this event.
    if (order.status !== 'awaiting_payment') return noChange(`order is already ${order.status}`);
    await ctx.orders.changeOrder(
      ctx.q,
      order,
      { status: 'payment_failed', ...missingIds(order, { sessionId: null, paymentIntentId: pi.id }) },
      ctx.cause,
    );
    return applied();
  },
};

/**
 * The order's amount_refunded is recomputed from what Stripe told of its PaymentIntent's refunds and charges
 * (`refundedTotal`), never added to: the same in any order and under any duplication. It falls when a refund
 * fails, since that money stays with the merchant, and the status follows it (refunded, partially_refunded,
 * or paid again).
 */
async function applyRefundTotal(ctx: HandlerContext, order: OrderRow): Promise<HandlerResult> {
  const total = await refundedOf(ctx, order, order.payment_intent_id);
  if (total === order.amount_refunded) return noChange('refunds already counted');
  const change = (await ctx.orders.changeOrder(
    ctx.q,
    order,
    { amount_refunded: total, status: statusAfterRefund(order.amount_paid, total) },
    ctx.cause,
  )) as OrderChange;
  await ctx.commissions.reverseCommission(ctx.q, change.order, ctx.cause, { reason: 'refund' });
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
  const total = await refundedOf(ctx, order, paymentIntentId);
  if (flagged.amount_refunded === total) return noChange(`refunds of ${paymentIntentId} already noted`);
  const flags = order.flags.map((f) => (f === flagged ? { ...f, amount_refunded: total } : f));
  await ctx.orders.changeOrder(ctx.q, order, { flags }, ctx.cause);
  return applied(`a refund of the second payment ${paymentIntentId}, not of the order`);
}

const chargeRefunded: EventHandler<Charge> = {
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
    return other ? noteSecondPaymentRefund(ctx, order, other) : applyRefundTotal(ctx, order);
  },
};

const refundChanged: EventHandler<Refund> = {
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
    return other ? noteSecondPaymentRefund(ctx, order, other) : applyRefundTotal(ctx, order);
  },
};

const DISPUTE_RANK: Record<DisputeStatus, number> = { open: 0, won: 1, lost: 1 };

/**
 * Disputes: the dispute row moves open → won | lost and never back; the order shows its newest dispute.
 * A "closed" that arrives before its "created" opens and closes in two recorded steps, since the state
 * machine has no direct step from no dispute to a decided one.
 */
const disputeChanged: EventHandler<Dispute> = {
  schema: DisputeSchema,
  locate: (dispute) => ({ orderId: null, paymentIntentId: dispute.payment_intent, chargeId: dispute.charge }),
  async apply(ctx, order, dispute) {
    if (!isPaid(order)) return waitForPayment(order);
    const status = disputeStatusOf(dispute.status);
    const known = (await ctx.q.query<{ status: DisputeStatus }>(selectDispute(dispute.id))).rows[0];
    let recorded = true;
    let lostNow = false;
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
      lostNow = status === 'lost';
    } else if (DISPUTE_RANK[status] > DISPUTE_RANK[known.status]) {
      await ctx.q.query(updateDisputeStatus(dispute.id, status, ctx.eventId));
      lostNow = status === 'lost';
    } else {
      recorded = false;
    }
    const target =
      (await ctx.q.query<{ status: DisputeStatus }>(newestDisputeStatus(order.id))).rows[0]?.status ?? null;
    let current = order;
    if (target !== current.dispute_status) {
      if (!canChangeDispute(current.dispute_status, target)) {
        current =
          (await ctx.orders.changeOrder(ctx.q, current, { dispute_status: 'open' }, ctx.cause))?.order ??
          current;
      }
      current =
        (await ctx.orders.changeOrder(ctx.q, current, { dispute_status: target }, ctx.cause))?.order ??
        current;
    }
    if (lostNow)
      await ctx.commissions.reverseCommission(ctx.q, current, ctx.cause, { reason: 'dispute_lost' });
    return recorded || current !== order
      ? applied()
      : noChange(`dispute ${dispute.id} is already ${known?.status}`);
  },
};

/** A handler bound to one event's object, once the object has been read. */
export interface BoundHandler {
  locator: OrderLocator;
  apply(ctx: HandlerContext, order: OrderRow): Promise<HandlerResult>;
}

/** Reads the event's object with the handler's schema: a bound handler, or what made the object unreadable. */
export type ReadObject = (object: unknown) => BoundHandler | { problem: string };

function reader<T>(handler: EventHandler<T>): ReadObject {
  return (object) => {
    const parsed = handler.schema.safeParse(object);
    if (!parsed.success)
      return { problem: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') };
    const value = parsed.data;
    return { locator: handler.locate(value), apply: (ctx, order) => handler.apply(ctx, order, value) };
  };
}

/** Every event type the service acts on (DESIGN §3). Anything else is recorded and ignored. */
export const HANDLERS: Readonly<Record<string, ReadObject>> = {
  'checkout.session.completed': reader(checkoutCompleted),
  'checkout.session.async_payment_succeeded': reader(asyncPaymentSucceeded),
  'checkout.session.async_payment_failed': reader(asyncPaymentFailed),
  'checkout.session.expired': reader(checkoutExpired),
  'payment_intent.succeeded': reader(paymentIntentSucceeded),
  'payment_intent.payment_failed': reader(paymentIntentFailed),
  'charge.refunded': reader(chargeRefunded),
  'refund.created': reader(refundChanged),
  'refund.updated': reader(refundChanged),
  'charge.dispute.created': reader(disputeChanged),
  'charge.dispute.closed': reader(disputeChanged),
};

export const HANDLED_TYPES = Object.keys(HANDLERS);
