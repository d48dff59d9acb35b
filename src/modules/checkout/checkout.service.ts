import type Stripe from 'stripe';
import type { Config } from '../../config.js';
import type { Db } from '../../ports/db.js';
import { AppError, isUniqueViolation } from '../../shared/errors.js';
import { lineItemsTotal, toSafeNumber } from '../../shared/money.js';
import {
  attemptOfRequest,
  failAttempt,
  isMissingStripeObject,
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
  selectOtherPendingCheckout,
} from '../attempts/attempts.sql.js';
import type { OrderStatus } from '../orders/orders.machine.js';
import type { LineItem, OrderPatch, OrderRow, OrdersService } from '../orders/orders.service.js';
import { wakeDeferred } from '../webhooks/webhooks.sql.js';
import {
  type CheckoutSessionRow,
  insertSession,
  selectSession,
  selectUnsupersededSessions,
  supersedeSessions,
} from './checkout.sql.js';

/** A checkout request as the route has validated it (CONTRACT §3). */
export interface CheckoutInput {
  order_id: string;
  currency: string;
  customer_email: string;
  line_items: LineItem[];
  referral_code?: string | undefined;
  success_url?: string | undefined;
  cancel_url?: string | undefined;
  client_ip?: string | undefined;
}

/** Who asked: the order history's cause, and the Idempotency-Key row a retry of the request shares. */
export interface RequestContext {
  cause: string;
  requestId: string | null;
}

/** The 201 body of `POST /v1/checkout/sessions`. */
export interface CheckoutSessionView {
  id: string;
  url: string | null;
  order_id: string;
  status: string | null;
  amount_total: number | null;
  currency: string | null;
  expires_at: number;
}

/** Everything phases 2 and 3 need, fixed in phase 1 so that every repeat sends Stripe the same request. */
interface CheckoutParams {
  cause: string;
  /** The order fields this session charges for; written with the session id in phase 3. */
  order: Required<
    Pick<
      OrderPatch,
      'currency' | 'amount_total' | 'line_items' | 'customer_email' | 'referral_code' | 'client_ip'
    >
  >;
  session: Stripe.Checkout.SessionCreateParams;
  /** The order's earlier sessions, expired before the new one is made and marked superseded with it. */
  expire: string[];
}
type CheckoutAttempt = AttemptRow<CheckoutParams>;

/** Statuses in which an order may get a new session; any other means money was taken or is on its way. */
const OPENABLE: readonly OrderStatus[] = ['awaiting_payment', 'payment_failed', 'expired'];

/** Another request's session for the order is half made; it finishes within seconds (or the completer's delay). */
const checkoutInProgress = (orderId: string) =>
  new AppError(
    409,
    'checkout_in_progress',
    `another Checkout Session for order ${orderId} is being created`,
    {
      retryable: true,
    },
  );

const alreadyPaid = (orderId: string) =>
  new AppError(409, 'order_already_paid', `order ${orderId} is paid or its payment is settling`, {
    details: { order_id: orderId },
  });

/** What the success page shows. */
export interface SessionSeen {
  order: OrderRow | null;
  /** Stripe reports the session paid; the order itself waits for the webhook. */
  paymentReceived: boolean;
}

export interface CheckoutServiceOptions {
  /**
   * Test seam: runs after Stripe answered and before the answer is stored, so a test can fail exactly where
   * a crash would hurt most. Never set outside tests.
   */
  afterStripeCall?: (attempt: CheckoutAttempt) => Promise<void>;
}

export function createCheckoutService(
  deps: { db: Db; stripe: Stripe; orders: OrdersService; config: Pick<Config, 'publicUrl'> },
  options: CheckoutServiceOptions = {},
) {
  const { db, stripe, orders } = deps;

  const toView = (s: Stripe.Checkout.Session, orderId: string): CheckoutSessionView => ({
    id: s.id,
    url: s.url,
    order_id: orderId,
    status: s.status,
    amount_total: s.amount_total,
    currency: s.currency,
    expires_at: s.expires_at,
  });

  function sessionParams(input: CheckoutInput): CheckoutParams['session'] {
    const metadata: Record<string, string> = {
      order_id: input.order_id,
      ...(input.referral_code ? { referral_code: input.referral_code } : {}),
    };
    const base = deps.config.publicUrl;
    return {
      mode: 'payment',
      client_reference_id: input.order_id,
      customer_email: input.customer_email,
      line_items: input.line_items.map((item) => ({
        quantity: item.quantity,
        price_data: {
          currency: input.currency,
          unit_amount: item.unit_amount,
          product_data: { name: item.name },
        },
      })),
      metadata,
      payment_intent_data: { metadata },
      // Stripe fills in {CHECKOUT_SESSION_ID} itself; it must reach Stripe unencoded.
      success_url: input.success_url ?? `${base}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url:
        input.cancel_url ?? `${base}/checkout/cancel?order_id=${encodeURIComponent(input.order_id)}`,
    };
  }

  /** Phase 1: the order (new, or an unpaid one getting a new session) and the attempt, in one transaction. */
  async function recordCheckout(input: CheckoutInput, ctx: RequestContext): Promise<CheckoutAttempt> {
    const amountTotal = toSafeNumber(lineItemsTotal(input.line_items));
    const fields = {
      currency: input.currency,
      amount_total: amountTotal,
      line_items: input.line_items,
      customer_email: input.customer_email,
      referral_code: input.referral_code ?? null,
      client_ip: input.client_ip ?? null,
    };
    return db.tx(async (q) => {
      const earlier = await attemptOfRequest<CheckoutParams>(q, 'checkout_session', ctx.requestId);
      if (earlier) return earlier;
      let order = await orders.lockOrder(q, input.order_id);
      if (!order) {
        // Announced in phase 3, with its session id: one first diff, as the Orders service expects it.
        order = (
          await orders.createOrder(q, { id: input.order_id, ...fields }, ctx.cause, { announce: false })
        ).order;
      } else {
        if (!OPENABLE.includes(order.status)) throw alreadyPaid(order.id);
        const other = await q.query(selectOtherPendingCheckout(order.id, ctx.requestId));
        if (other.rows.length > 0) {
          throw checkoutInProgress(order.id);
        }
      }
      const expire = (await q.query<{ id: string }>(selectUnsupersededSessions(order.id))).rows.map(
        (r) => r.id,
      );
      return recordAttempt<CheckoutParams>(q, {
        kind: 'checkout_session',
        orderId: order.id,
        requestId: ctx.requestId,
        params: { cause: ctx.cause, order: fields, session: sessionParams(input), expire },
      });
    });
  }

  /**
   * Whether a completed session's payment succeeded or may still: paid outright, or a delayed method (bank
   * debit) whose PaymentIntent is still processing, perhaps before our webhook has moved the order to
   * processing. Only a delayed payment that failed leaves the order free for a new session.
   */
  async function paymentUnderWay(session: Stripe.Checkout.Session): Promise<boolean> {
    if (session.payment_status !== 'unpaid') return true;
    const id =
      typeof session.payment_intent === 'string' ? session.payment_intent : session.payment_intent?.id;
    if (!id) return true;
    const pi = await stripe.paymentIntents.retrieve(id);
    return pi.status !== 'requires_payment_method' && pi.status !== 'canceled';
  }

  /**
   * Expires an earlier session; one that is no longer open (or unknown) needs nothing, unless its payment
   * went through or is still on its way.
   */
  async function expireEarlier(attempt: CheckoutAttempt, sessionId: string): Promise<void> {
    try {
      await stripe.checkout.sessions.expire(
        sessionId,
        {},
        { idempotencyKey: stripeIdempotencyKey(attempt, `expire:${sessionId}`) },
      );
    } catch (err) {
      if (isRetryableStripeError(err)) throw err;
      // Unknown to this Stripe account (say, an emulator that restarted): there is nothing to expire.
      if (isMissingStripeObject(err)) return;
      const session = await stripe.checkout.sessions.retrieve(sessionId);
      if (session.status === 'open') throw err;
      if (session.status === 'complete' && (await paymentUnderWay(session)))
        throw alreadyPaid(attempt.order_id);
    }
  }

  /** Phase 3: stores the session and points the order at it, unless the order got paid meanwhile. */
  async function storeSession(
    attempt: CheckoutAttempt,
    session: Stripe.Checkout.Session,
  ): Promise<CheckoutSessionView> {
    const outcome = await db.tx(
      async (q): Promise<{ view: CheckoutSessionView } | { error: AppError; expireNew: boolean }> => {
        const current = (await q.query<CheckoutAttempt>(selectAttemptForUpdate(attempt.id))).rows[0]!;
        if (current.status === 'done')
          return { view: toView(current.response as unknown as Stripe.Checkout.Session, attempt.order_id) };
        if (current.status === 'failed') return { error: storedFailure(current), expireNew: false };
        const order = (await orders.lockOrder(q, attempt.order_id)) as OrderRow;
        if (!OPENABLE.includes(order.status)) {
          return { error: await failAttempt(q, attempt, alreadyPaid(order.id)), expireNew: true };
        }
        await q.query(
          insertSession({
            id: session.id,
            orderId: order.id,
            attemptId: attempt.id,
            url: session.url,
            amountTotal: session.amount_total ?? attempt.params.order.amount_total,
            currency: session.currency ?? attempt.params.order.currency,
            expiresAt: session.expires_at,
          }),
        );
        await q.query(supersedeSessions(order.id, attempt.params.expire));
        await q.query(markAttemptDone(attempt.id, session.id, session));
        await orders.changeOrder(
          q,
          order,
          {
            ...attempt.params.order,
            checkout_session_id: session.id,
            ...(order.status === 'awaiting_payment' ? {} : { status: 'awaiting_payment' as const }),
          },
          attempt.params.cause,
        );
        // Stripe's expiry of a replaced session may have come while this one was being made, and waits.
        await q.query(wakeDeferred(order.id));
        return { view: toView(session, order.id) };
      },
    );
    if ('view' in outcome) return outcome.view;
    if (outcome.expireNew) {
      // Best effort: the order is paid, so nobody should pay this session too. If this fails, Stripe
      // expires the session by itself within 24 hours.
      await stripe.checkout.sessions
        .expire(session.id, {}, { idempotencyKey: stripeIdempotencyKey(attempt, `expire:${session.id}`) })
        .catch(() => {});
    }
    throw outcome.error;
  }

  /** Phases 2 and 3 of a pending attempt: for the request that recorded it, its retry, or the completer. */
  async function complete(attempt: CheckoutAttempt): Promise<CheckoutSessionView> {
    let session: Stripe.Checkout.Session;
    try {
      for (const earlier of attempt.params.expire) await expireEarlier(attempt, earlier);
      session = await stripe.checkout.sessions.create(attempt.params.session, {
        idempotencyKey: stripeIdempotencyKey(attempt),
      });
    } catch (err) {
      if (err instanceof AppError) throw await failAttempt(db, attempt, err);
      if (isRetryableStripeError(err)) throw stripeUnavailable(err);
      const message = err instanceof Error ? err.message : String(err);
      throw await failAttempt(
        db,
        attempt,
        new AppError(502, 'stripe_error', `Stripe refused the Checkout Session: ${message}`),
      );
    }
    await options.afterStripeCall?.(attempt);
    return storeSession(attempt, session);
  }

  return {
    /**
     * `POST /v1/checkout/sessions`: records the order and the attempt, then creates the Checkout Session.
     * A retry of the same request (same Idempotency-Key) resumes the attempt its first try recorded.
     */
    async createSession(input: CheckoutInput, ctx: RequestContext): Promise<CheckoutSessionView> {
      let attempt: CheckoutAttempt;
      try {
        attempt = await recordCheckout(input, ctx);
      } catch (err) {
        // Two requests created the same new order at once: the loser finds it and goes on as for any order.
        if (!isUniqueViolation(err)) throw err;
        attempt = await recordCheckout(input, ctx);
      }
      if (attempt.status === 'done')
        return toView(attempt.response as unknown as Stripe.Checkout.Session, attempt.order_id);
      if (attempt.status === 'failed') throw storedFailure(attempt);
      return complete(attempt);
    },

    /** The completer's entry: finishes an attempt a crash left pending. */
    complete: (attempt: AttemptRow) => complete(attempt as CheckoutAttempt),

    /**
     * What the success page may say about a session: its order, and whether Stripe already reports the
     * payment while our webhook has not confirmed it yet. Reads only; the order changes through webhooks.
     */
    async describeSession(sessionId: string): Promise<SessionSeen> {
      const row = (await db.query<CheckoutSessionRow>(selectSession(sessionId))).rows[0];
      // Only sessions we made are looked up at Stripe: the page is public, and any other id would let
      // anyone spend our Stripe rate limit.
      const order = row ? await orders.getOrder(db, row.order_id) : null;
      if (!order || !OPENABLE.includes(order.status)) return { order, paymentReceived: false };
      // A buyer may land here before the webhook: Stripe's view of the session says "payment received".
      const session = await stripe.checkout.sessions.retrieve(sessionId).catch(() => null);
      return { order, paymentReceived: session?.payment_status === 'paid' };
    },
  };
}

export type CheckoutService = ReturnType<typeof createCheckoutService>;
