import type Stripe from 'stripe';
import type { Db, Queryable } from '../../ports/db.js';
import { AppError, isUniqueViolation } from '../../shared/errors.js';
import { lineItemsTotal, toSafeNumber } from '../../shared/money.js';
import {
  changeOrder,
  createOrder,
  type LineItem,
  lockOrder,
  type OrderPatch,
  type OrderRow,
  type OrderStatus,
} from '../orders/index.js';
import {
  beginCall,
  type CallRequest,
  finishCall,
  hasPendingCall,
  isMissingStripeObject,
  isRetryableStripeError,
  type PhaseHooks,
  type StripeCallRow,
  type StripeCallSpec,
  stripeIdempotencyKey,
} from '../stripe-calls/index.js';
import { wakeEventsWaitingOn } from '../stripe-events/index.js';
import { insertSession, selectUnsupersededSessions, supersedeSessions } from './checkout.sql.js';

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
export interface CheckoutParams {
  cause: string;
  /** The order fields this session charges for; written with the session id in phase 3. */
  order: Required<
    Pick<
      OrderPatch,
      | 'currency'
      | 'amount_total'
      | 'line_items'
      | 'customer_email'
      | 'referral_code'
      | 'referral_affiliate_id'
      | 'client_ip'
    >
  >;
  session: Stripe.Checkout.SessionCreateParams;
  /** The order's earlier sessions, expired before the new one is made and marked superseded with it. */
  expire: string[];
}
type CheckoutCall = StripeCallRow<CheckoutParams>;

/** Statuses in which an order may get a new session; any other means money was taken or is on its way. */
export const OPENABLE: readonly OrderStatus[] = ['awaiting_payment', 'payment_failed', 'expired'];

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

export interface CheckoutDeps {
  db: Db;
  stripe: Stripe;
  /** The base of the default success and cancel pages. */
  publicUrl: string;
  /** How a checkout's referral code is attributed (the referral programme, wired in modules.ts). */
  resolveReferral: ReferralResolver;
  hooks?: PhaseHooks;
}

const toView = (s: Stripe.Checkout.Session, orderId: string): CheckoutSessionView => ({
  id: s.id,
  url: s.url,
  order_id: orderId,
  status: s.status,
  amount_total: s.amount_total,
  currency: s.currency,
  expires_at: s.expires_at,
});

function sessionParams(input: CheckoutInput, publicUrl: string): CheckoutParams['session'] {
  const metadata: Record<string, string> = {
    order_id: input.order_id,
    ...(input.referral_code ? { referral_code: input.referral_code } : {}),
  };
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
    success_url: input.success_url ?? `${publicUrl}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
    cancel_url:
      input.cancel_url ?? `${publicUrl}/checkout/cancel?order_id=${encodeURIComponent(input.order_id)}`,
  };
}

/** Finds the affiliate an active referral code names (the referral programme's `resolveCode`). */
export type ReferralResolver = (
  q: Queryable,
  code: string,
) => Promise<{ code: string; affiliate_id: string } | null>;

/** The affiliate a referral code names, with the code as registered; 400 for an unknown or inactive one. */
async function attribution(q: Queryable, resolveCode: ReferralResolver, code: string) {
  const found = await resolveCode(q, code);
  if (!found) {
    throw new AppError(400, 'referral_code_invalid', `the referral code ${code} is unknown or inactive`, {
      details: { referral_code: code },
    });
  }
  return found;
}

/** Phase 1's own work: the order (new, or an unpaid one getting a new session), under its row lock. */
async function beginCheckout(
  q: Queryable,
  input: CheckoutInput,
  request: CallRequest,
  deps: Pick<CheckoutDeps, 'publicUrl' | 'resolveReferral'>,
) {
  const referral = input.referral_code
    ? await attribution(q, deps.resolveReferral, input.referral_code)
    : null;
  const fields = {
    currency: input.currency,
    amount_total: toSafeNumber(lineItemsTotal(input.line_items)),
    line_items: input.line_items,
    customer_email: input.customer_email,
    referral_code: referral?.code ?? null,
    referral_affiliate_id: referral?.affiliate_id ?? null,
    client_ip: input.client_ip ?? null,
  };
  let order = await lockOrder(q, input.order_id);
  if (!order) {
    // Announced in phase 3, with its session id: one first diff, as the Orders service expects it.
    order = (await createOrder(q, { id: input.order_id, ...fields }, request.cause, { announce: false }))
      .order;
  } else {
    if (!OPENABLE.includes(order.status)) throw alreadyPaid(order.id);
    if (await hasPendingCall(q, order.id, 'checkout_session', request.requestId))
      throw checkoutInProgress(order.id);
  }
  const expire = (await q.query<{ id: string }>(selectUnsupersededSessions(order.id))).rows.map((r) => r.id);
  const params: CheckoutParams = {
    cause: request.cause,
    order: fields,
    session: sessionParams(input, deps.publicUrl),
    expire,
  };
  return { orderId: order.id, params };
}

/**
 * Whether a completed session's payment succeeded or may still: paid outright, or a delayed method (bank debit)
 * whose PaymentIntent is still processing, perhaps before our webhook has moved the order to processing. Only
 * a delayed payment that failed leaves the order free for a new session.
 */
async function paymentUnderWay(stripe: Stripe, session: Stripe.Checkout.Session): Promise<boolean> {
  if (session.payment_status !== 'unpaid') return true;
  const id = typeof session.payment_intent === 'string' ? session.payment_intent : session.payment_intent?.id;
  if (!id) return true;
  const pi = await stripe.paymentIntents.retrieve(id);
  return pi.status !== 'requires_payment_method' && pi.status !== 'canceled';
}

/** Expires an earlier session; one no longer open (or unknown) needs nothing, unless its payment went through. */
async function expireEarlier(
  stripe: Stripe,
  call: CheckoutCall,
  sessionId: string,
  key: string,
): Promise<void> {
  try {
    await stripe.checkout.sessions.expire(sessionId, {}, { idempotencyKey: key });
  } catch (err) {
    if (isRetryableStripeError(err)) throw err;
    // Unknown to this Stripe account (say, an emulator that restarted): there is nothing to expire.
    if (isMissingStripeObject(err)) return;
    const session = await stripe.checkout.sessions.retrieve(sessionId);
    if (session.status === 'open') throw err;
    if (session.status === 'complete' && (await paymentUnderWay(stripe, session)))
      throw alreadyPaid(call.order_id);
  }
}

/** Phase 3: stores the session and points the order at it, unless the order got paid meanwhile. */
async function storeSession(
  q: Queryable,
  call: CheckoutCall,
  session: Stripe.Checkout.Session,
): Promise<AppError | undefined> {
  const order = (await lockOrder(q, call.order_id)) as OrderRow;
  if (!OPENABLE.includes(order.status)) return alreadyPaid(order.id);
  await q.query(
    insertSession({
      id: session.id,
      orderId: order.id,
      callId: call.id,
      url: session.url,
      amountTotal: session.amount_total ?? call.params.order.amount_total,
      currency: session.currency ?? call.params.order.currency,
      orderFields: call.params.order,
      expiresAt: session.expires_at,
    }),
  );
  await q.query(supersedeSessions(order.id, call.params.expire));
  await changeOrder(
    q,
    order,
    {
      ...call.params.order,
      checkout_session_id: session.id,
      ...(order.status === 'awaiting_payment' ? {} : { status: 'awaiting_payment' as const }),
    },
    call.params.cause,
  );
  // Stripe's expiry of a replaced session may have come while this one was being made, and waits.
  await wakeEventsWaitingOn(q, order.id);
  return undefined;
}

/** How a Checkout Session call is made and settled, for the request and for the completer alike. */
export function checkoutCallSpec(
  stripe: Stripe,
): StripeCallSpec<CheckoutParams, Stripe.Checkout.Session, CheckoutSessionView> {
  return {
    kind: 'checkout_session',
    async call(call, key) {
      for (const earlier of call.params.expire)
        await expireEarlier(stripe, call, earlier, key(`expire:${earlier}`));
      return stripe.checkout.sessions.create(call.params.session, { idempotencyKey: key() });
    },
    refused: (err) =>
      new AppError(
        502,
        'stripe_error',
        `Stripe refused the Checkout Session: ${err instanceof Error ? err.message : String(err)}`,
      ),
    settle: storeSession,
    // The order is paid, so nobody should pay this session too. If this fails, Stripe expires it within 24 h.
    undo: async (call, session) => {
      await stripe.checkout.sessions.expire(
        session.id,
        {},
        { idempotencyKey: stripeIdempotencyKey(call, `expire:${session.id}`) },
      );
    },
    view: (session, call) => toView(session, call.order_id),
  };
}

/**
 * `POST /v1/checkout/sessions`: records the order and the call, then creates the Checkout Session. A retry of
 * the same request (same Idempotency-Key) resumes the call its first try recorded.
 */
export async function createCheckoutSession(
  deps: CheckoutDeps,
  spec: StripeCallSpec<CheckoutParams, Stripe.Checkout.Session, CheckoutSessionView>,
  input: CheckoutInput,
  request: CallRequest,
): Promise<CheckoutSessionView> {
  const phase1 = {
    requestId: request.requestId,
    begin: (q: Queryable) => beginCheckout(q, input, request, deps),
  };
  let call: CheckoutCall;
  try {
    call = await beginCall(deps.db, spec.kind, phase1);
  } catch (err) {
    // Two requests created the same new order at once: the loser finds it and goes on as for any order.
    if (!isUniqueViolation(err)) throw err;
    call = await beginCall(deps.db, spec.kind, phase1);
  }
  return finishCall(deps.db, spec, call, deps.hooks);
}
