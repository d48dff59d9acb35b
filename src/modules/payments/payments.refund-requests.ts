import Stripe from 'stripe';
import type { Db, Queryable } from '../../ports/db.js';
import { AppError, notFound, validationFailed } from '../../shared/errors.js';
import { amountProblem } from '../../shared/money.js';
import { lockOrder, PAID_STATUSES } from '../orders/index.js';
import { refundCallsOf, runInPhases, type StripeCallSpec } from '../stripe-calls/index.js';
import { refundRecords } from './payments.handlers.js';
import { countedRefunds } from './payments.refund-totals.js';

/** Stripe's own refund reasons; any other reason travels in the refund's metadata only. */
const STRIPE_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'] as const;

/** The 201 body of `POST /v1/orders/:id/refunds` (CONTRACT §3). */
export interface RefundView {
  id: string;
  order_id: string;
  amount: number;
  status: string | null;
}

export type RefundParams = Stripe.RefundCreateParams & { amount: number; payment_intent: string };

export interface RefundInput {
  orderId: string;
  amount?: number | undefined;
  reason?: string | undefined;
}

/** Stripe's codes for "more than the charge has left": our balance check lost a race with a refund made elsewhere. */
const OVER_BALANCE_CODES = new Set(['amount_too_large', 'charge_already_refunded']);

const exceedsBalance = (orderId: string, requested: number, balance: number) =>
  new AppError(
    422,
    'refund_exceeds_balance',
    `a refund of ${requested} is more than the ${balance} left to refund on order ${orderId}`,
    { details: { order_id: orderId, requested, balance } },
  );

/**
 * What the order's PaymentIntent has refunded or is refunding: refunds we asked Stripe for and it did not
 * refuse, while Stripe has not reported them yet, plus every refund Stripe reported that has not failed or been
 * canceled. A refund that failed no longer counts: its money is the merchant's again.
 */
async function requestedRefunds(
  q: Queryable,
  orderId: string,
  paymentIntentId: string | null,
): Promise<number> {
  const records = await refundRecords(q, orderId);
  const reported = new Set(records.filter((r) => r.kind === 'refund').map((r) => r.id));
  const unreported = (await refundCallsOf(q, orderId))
    .filter((c) => c.stripe_object_id === null || !reported.has(c.stripe_object_id))
    .reduce((total, c) => total + c.amount, 0);
  return unreported + countedRefunds(records, paymentIntentId);
}

/**
 * Phase 1, under the order's row lock so concurrent refunds are judged one at a time. The balance is what was
 * paid minus the larger of what Stripe reports refunded (`amount_refunded`, kept by the webhook) and what is
 * refunded or being refunded: a refund we asked for counts before its webhook arrives, one made in Stripe's
 * dashboard counts once the webhook reports it, and one that failed counts no longer. Stripe refuses anything
 * beyond the charge's remaining amount as a last line.
 */
async function beginRefund(q: Queryable, input: RefundInput) {
  const order = await lockOrder(q, input.orderId);
  if (!order) throw notFound(`order ${input.orderId}`);
  const requested = await requestedRefunds(q, order.id, order.payment_intent_id);
  const refundable = PAID_STATUSES.includes(order.status) && order.payment_intent_id !== null;
  const balance = refundable
    ? Math.max(0, order.amount_paid - Math.max(order.amount_refunded, requested))
    : 0;
  const amount = input.amount ?? balance;
  if (input.amount !== undefined) {
    const problem = amountProblem(input.amount, order.currency);
    if (problem) throw validationFailed('the refund amount is invalid', { 'body.amount': problem });
  }
  if (amount <= 0 || amount > balance) throw exceedsBalance(order.id, amount, balance);
  const reason = STRIPE_REASONS.find((r) => r === input.reason);
  const params: RefundParams = {
    payment_intent: order.payment_intent_id!,
    amount,
    metadata: { order_id: order.id, ...(input.reason ? { reason: input.reason } : {}) },
    ...(reason ? { reason } : {}),
  };
  return { orderId: order.id, params, amount };
}

/** How a refund call is made, for the request and for the completer alike. Phase 3 only stores its id. */
export function refundCallSpec(stripe: Stripe): StripeCallSpec<RefundParams, Stripe.Refund, RefundView> {
  return {
    kind: 'refund',
    call: (call, key) => stripe.refunds.create(call.params, { idempotencyKey: key() }),
    refused(err, call) {
      const code = err instanceof Stripe.errors.StripeError ? err.code : undefined;
      if (code && OVER_BALANCE_CODES.has(code)) return exceedsBalance(call.order_id, call.params.amount, 0);
      return new AppError(
        502,
        'stripe_error',
        `Stripe refused the refund: ${err instanceof Error ? err.message : String(err)}`,
      );
    },
    view: (refund, call) => ({
      id: refund.id,
      order_id: call.order_id,
      amount: refund.amount,
      status: refund.status,
    }),
  };
}

/**
 * `POST /v1/orders/:id/refunds`: the refund is created with our call's id as Stripe's idempotency key, so a
 * retried request never refunds twice. The order's `amount_refunded` is left to the refund webhooks, which
 * report what Stripe actually refunded.
 */
export function createRefund(
  db: Db,
  spec: StripeCallSpec<RefundParams, Stripe.Refund, RefundView>,
  input: RefundInput,
  request: { requestId: string | null },
): Promise<RefundView> {
  return runInPhases(db, spec, {
    requestId: request.requestId,
    begin: (q) => beginRefund(q, input),
  });
}
