import Stripe from 'stripe';
import type { Db } from '../../ports/db.js';
import { AppError, notFound, validationFailed } from '../../shared/errors.js';
import { amountProblem } from '../../shared/money.js';
import {
  attemptOfRequest,
  failAttempt,
  isRetryableStripeError,
  recordAttempt,
  storedFailure,
  stripeIdempotencyKey,
  stripeUnavailable,
} from '../attempts/attempts.service.js';
import {
  type AttemptRow,
  markAttemptDone,
  selectAttemptForUpdate,
  selectRequestedRefunds,
} from '../attempts/attempts.sql.js';
import type { RequestContext } from '../checkout/checkout.service.js';
import { PAID_STATUSES } from '../orders/orders.machine.js';
import type { OrdersService } from '../orders/orders.service.js';

/** Stripe's own refund reasons; any other reason travels in the refund's metadata only. */
const STRIPE_REASONS = ['duplicate', 'fraudulent', 'requested_by_customer'] as const;

/** The 201 body of `POST /v1/orders/:id/refunds` (CONTRACT §3). */
export interface RefundView {
  id: string;
  order_id: string;
  amount: number;
  status: string | null;
}

type RefundParams = Stripe.RefundCreateParams & { amount: number; payment_intent: string };
type RefundAttempt = AttemptRow<RefundParams>;

/** Stripe's codes for "more than the charge has left": our balance check lost a race with a refund made elsewhere. */
const OVER_BALANCE_CODES = new Set(['amount_too_large', 'charge_already_refunded']);

const exceedsBalance = (orderId: string, requested: number, balance: number) =>
  new AppError(
    422,
    'refund_exceeds_balance',
    `a refund of ${requested} is more than the ${balance} left to refund on order ${orderId}`,
    {
      details: { order_id: orderId, requested, balance },
    },
  );

export function createRefundsService(deps: { db: Db; stripe: Stripe; orders: OrdersService }) {
  const { db, stripe, orders } = deps;

  const toView = (r: Stripe.Refund, orderId: string): RefundView => ({
    id: r.id,
    order_id: orderId,
    amount: r.amount,
    status: r.status,
  });

  /**
   * Phase 1, under the order's row lock so concurrent refunds are judged one at a time. The balance is what
   * was paid minus the larger of what Stripe reports refunded (`amount_refunded`, kept by the webhook) and
   * what is refunded or being refunded: a refund we asked for counts before its webhook arrives, one made in
   * Stripe's dashboard counts once the webhook reports it, and one that failed counts no longer. Stripe
   * refuses anything beyond the charge's remaining amount as a last line.
   */
  async function recordRefund(
    input: { orderId: string; amount?: number | undefined; reason?: string | undefined },
    ctx: Pick<RequestContext, 'requestId'>,
  ): Promise<RefundAttempt> {
    return db.tx(async (q) => {
      const earlier = await attemptOfRequest<RefundParams>(q, 'refund', ctx.requestId);
      if (earlier) return earlier;
      const order = await orders.lockOrder(q, input.orderId);
      if (!order) throw notFound(`order ${input.orderId}`);
      const requested = (
        await q.query<{ requested: number }>(selectRequestedRefunds(order.id, order.payment_intent_id))
      ).rows[0]!.requested;
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
      return recordAttempt<RefundParams>(q, {
        kind: 'refund',
        orderId: order.id,
        requestId: ctx.requestId,
        amount,
        params: {
          payment_intent: order.payment_intent_id!,
          amount,
          metadata: { order_id: order.id, ...(input.reason ? { reason: input.reason } : {}) },
          ...(reason ? { reason } : {}),
        },
      });
    });
  }

  /** Phases 2 and 3: the refund at Stripe under the attempt's key, then its id stored. */
  async function complete(attempt: RefundAttempt): Promise<RefundView> {
    let refund: Stripe.Refund;
    try {
      refund = await stripe.refunds.create(attempt.params, { idempotencyKey: stripeIdempotencyKey(attempt) });
    } catch (err) {
      if (isRetryableStripeError(err)) throw stripeUnavailable(err);
      const code = err instanceof Stripe.errors.StripeError ? err.code : undefined;
      const error =
        code && OVER_BALANCE_CODES.has(code)
          ? exceedsBalance(attempt.order_id, attempt.params.amount, 0)
          : new AppError(
              502,
              'stripe_error',
              `Stripe refused the refund: ${err instanceof Error ? err.message : String(err)}`,
            );
      throw await failAttempt(db, attempt, error);
    }
    return db.tx(async (q) => {
      const current = (await q.query<RefundAttempt>(selectAttemptForUpdate(attempt.id))).rows[0]!;
      if (current.status === 'failed') throw storedFailure(current);
      if (current.status === 'pending') await q.query(markAttemptDone(attempt.id, refund.id, refund));
      return toView(refund, attempt.order_id);
    });
  }

  return {
    /**
     * `POST /v1/orders/:id/refunds`: the refund is created with our attempt's id as Stripe's idempotency key,
     * so a retried request never refunds twice. The order's `amount_refunded` is left to the `charge.refunded`
     * webhook, which reports what Stripe actually refunded.
     */
    async createRefund(
      input: { orderId: string; amount?: number | undefined; reason?: string | undefined },
      ctx: Pick<RequestContext, 'requestId'>,
    ): Promise<RefundView> {
      const attempt = await recordRefund(input, ctx);
      if (attempt.status === 'done')
        return toView(attempt.response as unknown as Stripe.Refund, attempt.order_id);
      if (attempt.status === 'failed') throw storedFailure(attempt);
      return complete(attempt);
    },

    /** The completer's entry: finishes a refund a crash left pending. */
    complete: (attempt: AttemptRow) => complete(attempt as RefundAttempt),
  };
}

export type RefundsService = ReturnType<typeof createRefundsService>;
