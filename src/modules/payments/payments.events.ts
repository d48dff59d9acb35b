import type Stripe from 'stripe';
import type { Queryable } from '../../ports/db.js';
import { lockOrder, type OrderRow, orderIdByPaymentIntent } from '../orders/index.js';
import type { AppliedOutcome, ApplyStep, EventApplier, InboxEvent } from '../stripe-events/index.js';
import { disputeChanged } from './payments.disputes.js';
import { type PaymentFactSubscriber, raiseFact } from './payments.facts.js';
import { connectedAccountEvent } from './payments.foreign.js';
import type {
  HandlerContext,
  HandlerResult,
  OrderEventHandler,
  RecordingHandler,
} from './payments.handlers.js';
import {
  chargeAtStripe,
  orderIdAtStripe,
  type PaymentResolution,
  sessionAtStripe,
} from './payments.lookups.js';
import { chargeRefunded, chargeSucceeded, refundChanged } from './payments.refunds.js';
import {
  asyncPaymentFailed,
  asyncPaymentSucceeded,
  checkoutCompleted,
  checkoutExpired,
  paymentIntentFailed,
  paymentIntentSucceeded,
} from './payments.sessions.js';

// biome-ignore lint/suspicious/noExplicitAny: each handler reads its own object type.
type AnyHandler = OrderEventHandler<any> | RecordingHandler<any>;

/**
 * Every event type the payments domain acts on (DESIGN §3). Anything else is recorded and ignored. A Map, not
 * an object: a type from outside such as `constructor` or `__proto__` must find nothing, not a prototype's.
 */
const HANDLERS: ReadonlyMap<string, AnyHandler> = new Map<string, AnyHandler>([
  ['checkout.session.completed', checkoutCompleted],
  ['checkout.session.async_payment_succeeded', asyncPaymentSucceeded],
  ['checkout.session.async_payment_failed', asyncPaymentFailed],
  ['checkout.session.expired', checkoutExpired],
  ['payment_intent.succeeded', paymentIntentSucceeded],
  ['payment_intent.payment_failed', paymentIntentFailed],
  ['charge.succeeded', chargeSucceeded],
  ['charge.refunded', chargeRefunded],
  ['refund.created', refundChanged],
  ['refund.updated', refundChanged],
  ['charge.dispute.created', disputeChanged],
  ['charge.dispute.closed', disputeChanged],
]);

export interface PaymentEventsDeps {
  stripe: Stripe;
  subscribers: readonly PaymentFactSubscriber[];
  wantsEvidence: (order: OrderRow) => boolean;
}

/** A handler's result as the inbox takes it: with the order it was resolved to, or a lookup to run first. */
function toStep(result: HandlerResult, orderId: string | null): ApplyStep {
  if (result.status === 'lookup') return { lookup: result.lookup };
  if (result.status !== 'deferred') return { ...result, orderId } as AppliedOutcome;
  if (!orderId) throw new Error(`a deferral needs an order to wait on: ${result.reason}`);
  return { ...result, orderId };
}

/**
 * Finds and locks the event's order, then lets the handler change it. The order is named by the event, found
 * by its PaymentIntent here, or, failing both, looked up at Stripe outside the transaction.
 */
async function applyToOrder(
  deps: PaymentEventsDeps,
  ctx: HandlerContext,
  handler: OrderEventHandler<unknown>,
  object: unknown,
): Promise<ApplyStep> {
  const locator = handler.locate(object);
  const looked = ctx.resolved.orderId !== undefined;
  let orderId = looked ? (ctx.resolved.orderId ?? null) : locator.orderId;
  if (!orderId && !looked && locator.paymentIntentId)
    orderId = await orderIdByPaymentIntent(ctx.q, locator.paymentIntentId);
  if (!orderId && !looked && (locator.paymentIntentId || locator.chargeId))
    return {
      lookup: async (): Promise<PaymentResolution> => ({
        orderId: await orderIdAtStripe(deps.stripe, locator),
      }),
    };
  if (!orderId) {
    const named = locator.paymentIntentId ?? locator.chargeId;
    const reason = named
      ? `no order of this service is linked to ${named}, here or at Stripe`
      : 'the event names no order';
    return { status: 'ignored', reason, orderId: null };
  }
  const order = await lockOrder(ctx.q, orderId);
  if (!order) return { status: 'ignored', reason: `order ${orderId} is unknown to this service`, orderId };
  return toStep(await handler.apply(ctx, order, object), order.id);
}

/** The payments domain as the Stripe event inbox sees it: one function per event family, by type. */
export function paymentEventApplier(deps: PaymentEventsDeps): EventApplier {
  return {
    types: [...HANDLERS.keys()],
    async apply(q: Queryable, event: InboxEvent, resolved) {
      const handler = HANDLERS.get(event.type);
      if (!handler)
        return { status: 'ignored', reason: `${event.type} events are not handled`, orderId: null };
      const parsed = handler.schema.safeParse(event.object);
      if (!parsed.success) {
        const problem = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
        return { status: 'failed', reason: `unreadable ${event.type} object: ${problem}`, orderId: null };
      }
      const ctx: HandlerContext = {
        q,
        eventId: event.id,
        cause: `stripe:${event.id}`,
        wantsEvidence: deps.wantsEvidence,
        raise: (fact) => raiseFact(deps.subscribers, q, fact),
        resolved: resolved as PaymentResolution,
        chargeAtStripe: (paymentIntentId) => chargeAtStripe(deps.stripe, paymentIntentId),
        sessionAtStripe: (paymentIntentId) => sessionAtStripe(deps.stripe, paymentIntentId),
      };
      if (event.account) {
        const orderHandler = 'record' in handler ? null : handler;
        const { result, orderId } = await connectedAccountEvent(
          ctx,
          orderHandler,
          parsed.data,
          event.account,
        );
        return toStep(result, orderId);
      }
      if ('record' in handler) return toStep(await handler.record(ctx, parsed.data), null);
      return applyToOrder(deps, ctx, handler, parsed.data);
    },
  };
}
