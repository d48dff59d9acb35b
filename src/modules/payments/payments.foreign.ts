import { newSessionUnderWay } from '../checkout/index.js';
import { lockOrder, type OrderRow } from '../orders/index.js';
import {
  flag,
  type HandlerContext,
  type HandlerResult,
  type OrderEventHandler,
  type TakenMoney,
} from './payments.handlers.js';
import type { Session } from './payments.objects.js';

/**
 * Payments this service did not make. Only the Checkout Sessions our checkout created settle an order; a
 * session or PaymentIntent that merely names one of our orders (a Payment Link whose client_reference_id is an
 * order id, another integration on the same Stripe account, an event of a connected account) never moves it.
 * Money taken that way is real, though, and needs a person: the order gets a `foreign_payment` flag (told to
 * the Orders service as a change of its flags), and the event is recorded as ignored with the reason.
 */

export interface ForeignPayment extends TakenMoney {
  /** The connected account it happened on, if it was one. */
  account: string | null;
  /** Why it is not the order's own payment. */
  why: string;
}

/** Flags the money on the order, once per object, and leaves the order as it was. */
export async function flagForeignPayment(
  ctx: HandlerContext,
  order: OrderRow,
  p: ForeignPayment,
): Promise<HandlerResult> {
  await flag(ctx, order, {
    rule: 'foreign_payment',
    object_id: p.objectId,
    amount: p.amount,
    currency: p.currency,
    payment_intent: p.paymentIntentId,
    ...(p.account ? { account: p.account } : {}),
  });
  return { status: 'ignored', reason: `${p.why}; flagged foreign_payment on order ${order.id}` };
}

/** What a paid session took. */
export const sessionMoney = (session: Session): TakenMoney => ({
  objectId: session.id,
  amount: session.amount_total,
  currency: session.currency,
  paymentIntentId: session.payment_intent,
});

/**
 * An event of a Checkout Session the order's checkout did not create. `paid`: the event says money was taken.
 * A session being made for the order right now is not foreign: its event waits for the call to be stored.
 * One that is complete but unpaid changes nothing, so it never blocks the order's own checkout.
 */
export async function foreignSession(
  ctx: HandlerContext,
  order: OrderRow,
  session: Session,
  paid: boolean,
): Promise<HandlerResult> {
  if (await newSessionUnderWay(ctx.q, order.id)) {
    return {
      status: 'deferred',
      reason: `a Checkout Session for order ${order.id} is being made; ${session.id} may be it`,
    };
  }
  const why = `${session.id} is not a Checkout Session this service created for order ${order.id}`;
  if (!paid) return { status: 'ignored', reason: why };
  return flagForeignPayment(ctx, order, { ...sessionMoney(session), account: null, why });
}

/**
 * The Checkout Session that made a PaymentIntent (which does not name it), as Stripe says: asked outside the
 * transaction as a lookup the first time, then read from what the lookup found. Null: no session made it.
 */
export function sessionOfPaymentIntent(
  ctx: HandlerContext,
  paymentIntentId: string,
): { sessionId: string | null } | { lookup: HandlerResult } {
  const found = ctx.resolved.sessionOfPaymentIntent;
  if (found !== undefined) return { sessionId: found };
  return {
    lookup: {
      status: 'lookup',
      lookup: async () => ({ sessionOfPaymentIntent: await ctx.sessionAtStripe(paymentIntentId) }),
    },
  };
}

/**
 * An event of a connected account (Stripe Connect): another business's payment, whatever order id its object
 * carries. Nothing of it is recorded; only the order it names outright is looked at (its other ids mean
 * nothing in this account), and only to flag money the event says was taken. `handler`: null for an event
 * that names no order.
 */
export async function connectedAccountEvent(
  ctx: HandlerContext,
  handler: OrderEventHandler<unknown> | null,
  object: unknown,
  account: string,
): Promise<{ result: HandlerResult; orderId: string | null }> {
  const why = `an event of the connected account ${account}, not of this service's own`;
  const taken = handler?.moneyTaken?.(object) ?? null;
  const orderId = handler?.locate(object).orderId;
  const order = taken && orderId ? await lockOrder(ctx.q, orderId) : null;
  if (!taken || !order) return { result: { status: 'ignored', reason: why }, orderId: null };
  return { result: await flagForeignPayment(ctx, order, { ...taken, account, why }), orderId: order.id };
}
