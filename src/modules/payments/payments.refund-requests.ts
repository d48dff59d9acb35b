import Stripe from 'stripe';
import type { Db, Queryable } from '../../ports/db.js';
import { AppError, notFound, serviceUnavailable, validationFailed } from '../../shared/errors.js';
import { amountProblem } from '../../shared/money.js';
import { getOrder, lockOrder, type OrderRow, PAID_STATUSES } from '../orders/index.js';
import {
  isRetryableStripeError,
  refundCallsOf,
  runInPhases,
  type StripeCallSpec,
} from '../stripe-calls/index.js';
import { refundRecords } from './payments.handlers.js';
import { type ListedRefund, refundsAtStripe } from './payments.lookups.js';
import { knownRefunds, refundBalance } from './payments.refund-totals.js';
import type { RefundRecord } from './payments.sql.js';

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

const isRefundable = (order: OrderRow) =>
  PAID_STATUSES.includes(order.status) && order.payment_intent_id !== null;

/**
 * The refunds Stripe holds for the order's payment that this service did not ask for, asked before phase 1
 * because no transaction may wait on Stripe. A refund made in the dashboard may be known here only as part of
 * its charge's running total, and that total cannot say whether it includes our own refunds: only its id lets
 * it be counted once beside them. Ours are left out of the list, since their calls count them, and one whose
 * call has no answer yet would count twice. An order that cannot be refunded is not asked about: phase 1
 * refuses it. A refund made after the list is taken is Stripe's to refuse (`OVER_BALANCE_CODES`).
 */
async function refundsMadeElsewhere(deps: RefundDeps, orderId: string): Promise<RefundRecord[]> {
  const order = await getOrder(deps.db, orderId);
  if (!order || !isRefundable(order)) return [];
  let listed: ListedRefund[];
  try {
    listed = await refundsAtStripe(deps.stripe, order.payment_intent_id!);
  } catch (err) {
    // Nothing is recorded yet, so the same request can simply be retried.
    if (isRetryableStripeError(err)) throw serviceUnavailable('Stripe', err);
    throw new AppError(
      502,
      'stripe_error',
      `Stripe did not list the refunds: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  return listed
    .filter((r) => r.order_id !== order.id)
    .map((r) => ({
      kind: 'refund',
      id: r.id,
      payment_intent_id: r.payment_intent_id,
      amount: r.amount,
      status: r.status,
    }));
}

/**
 * Phase 1, under the order's row lock so concurrent refunds are judged one at a time. The balance is what was
 * paid less every refund known by id that has not failed, each once (`knownRefunds`): ours from the moment we
 * ask for them, those Stripe reported, and those Stripe lists that we did not make; or less the webhook's
 * total (`amount_refunded`) when that is larger. A refund that failed counts no longer. Stripe refuses
 * anything beyond the charge's remaining amount as a last line.
 */
async function beginRefund(q: Queryable, input: RefundInput, elsewhere: readonly RefundRecord[]) {
  const order = await lockOrder(q, input.orderId);
  if (!order) throw notFound(`order ${input.orderId}`);
  const balance = isRefundable(order)
    ? refundBalance(
        order.amount_paid,
        order.amount_refunded,
        knownRefunds(
          await refundRecords(q, order.id),
          elsewhere,
          await refundCallsOf(q, order.id),
          order.payment_intent_id,
        ),
        order.payment_intent_id,
      )
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

export interface RefundDeps {
  db: Db;
  stripe: Stripe;
  spec: StripeCallSpec<RefundParams, Stripe.Refund, RefundView>;
}

/**
 * `POST /v1/orders/:id/refunds`: the refund is created with our call's id as Stripe's idempotency key, so a
 * retried request never refunds twice. The order's `amount_refunded` is left to the refund webhooks, which
 * report what Stripe actually refunded.
 */
export async function createRefund(
  deps: RefundDeps,
  input: RefundInput,
  request: { requestId: string | null },
): Promise<RefundView> {
  const elsewhere = await refundsMadeElsewhere(deps, input.orderId);
  return runInPhases(deps.db, deps.spec, {
    requestId: request.requestId,
    begin: (q) => beginRefund(q, input, elsewhere),
  });
}
