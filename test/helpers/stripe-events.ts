import Stripe from 'stripe';
import { createOrder } from '../../src/modules/orders/index.js';
import type { Db } from '../../src/ports/db.js';
import { randomBase62 } from '../../src/shared/ids.js';

/**
 * Hand-made Stripe events, for tests that need exact control over what arrives and in which order (the
 * emulator drives the end-to-end flows). Shapes follow Stripe's: the fields the service reads, plus the
 * envelope every event has. Signatures come from the SDK's own `generateTestHeaderString`.
 */

const sdk = new Stripe('sk_test_fixtures');

export interface OrderFixture {
  id: string;
  amount: number;
  currency: string;
  sessionId: string;
  paymentIntentId: string;
  chargeId: string;
}

export function orderFixture(overrides: Partial<OrderFixture> = {}): OrderFixture {
  const r = randomBase62(14);
  return {
    id: `ord_${r}`,
    amount: 5000,
    currency: 'usd',
    sessionId: `cs_test_${r}`,
    paymentIntentId: `pi_${r}`,
    chargeId: `ch_${r}`,
    ...overrides,
  };
}

/**
 * Creates the order as checkout would: awaiting payment, its current session set. `withPaymentIntent: false`
 * leaves the PaymentIntent unknown, as it is until the first payment event.
 */
export async function createOrderFor(
  db: Db,
  fx: OrderFixture,
  opts: { withPaymentIntent?: boolean } = {},
): Promise<void> {
  await db.tx((q) =>
    createOrder(
      q,
      {
        id: fx.id,
        currency: fx.currency,
        amount_total: fx.amount,
        line_items: [{ name: 'T-shirt', unit_amount: fx.amount, quantity: 1 }],
        checkout_session_id: fx.sessionId,
        ...(opts.withPaymentIntent === false ? {} : { payment_intent_id: fx.paymentIntentId }),
      },
      'test:setup',
    ),
  );
}

export interface FixtureEvent {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  livemode: boolean;
  pending_webhooks: number;
  request: { id: null; idempotency_key: null };
  type: string;
  data: { object: Record<string, unknown> };
}

let clock = Math.floor(Date.now() / 1000);

export function stripeEvent(
  type: string,
  object: Record<string, unknown>,
  opts: { livemode?: boolean } = {},
): FixtureEvent {
  clock += 1;
  return {
    id: `evt_${randomBase62(24)}`,
    object: 'event',
    api_version: Stripe.API_VERSION,
    created: clock,
    livemode: opts.livemode ?? false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  };
}

function session(fx: OrderFixture, fields: Record<string, unknown>) {
  return {
    id: fx.sessionId,
    object: 'checkout.session',
    amount_subtotal: fx.amount,
    amount_total: fx.amount,
    currency: fx.currency,
    client_reference_id: fx.id,
    metadata: { order_id: fx.id },
    mode: 'payment',
    payment_intent: fx.paymentIntentId,
    payment_status: 'paid',
    status: 'complete',
    livemode: false,
    ...fields,
  };
}

function paymentIntent(fx: OrderFixture, fields: Record<string, unknown>) {
  return {
    id: fx.paymentIntentId,
    object: 'payment_intent',
    amount: fx.amount,
    amount_received: fx.amount,
    currency: fx.currency,
    metadata: { order_id: fx.id },
    status: 'succeeded',
    latest_charge: fx.chargeId,
    livemode: false,
    ...fields,
  };
}

export const events = {
  completed: (fx: OrderFixture, fields: Record<string, unknown> = {}) =>
    stripeEvent('checkout.session.completed', session(fx, fields)),
  completedPending: (fx: OrderFixture) =>
    stripeEvent('checkout.session.completed', session(fx, { payment_status: 'unpaid' })),
  asyncSucceeded: (fx: OrderFixture) =>
    stripeEvent('checkout.session.async_payment_succeeded', session(fx, {})),
  asyncFailed: (fx: OrderFixture) =>
    stripeEvent('checkout.session.async_payment_failed', session(fx, { payment_status: 'unpaid' })),
  expired: (fx: OrderFixture, sessionId = fx.sessionId) =>
    stripeEvent(
      'checkout.session.expired',
      session(fx, { id: sessionId, payment_intent: null, payment_status: 'unpaid', status: 'expired' }),
    ),
  paymentSucceeded: (fx: OrderFixture) => stripeEvent('payment_intent.succeeded', paymentIntent(fx, {})),
  paymentFailed: (fx: OrderFixture) =>
    stripeEvent(
      'payment_intent.payment_failed',
      paymentIntent(fx, { amount_received: 0, status: 'requires_payment_method' }),
    ),
  /** The charge that took the money, with what the payment facts carry of it. */
  chargeSucceeded: (
    fx: OrderFixture,
    evidence: { customer?: string; fingerprint?: string; riskLevel?: string; email?: string } = {},
  ) =>
    stripeEvent('charge.succeeded', {
      id: fx.chargeId,
      object: 'charge',
      amount: fx.amount,
      amount_captured: fx.amount,
      amount_refunded: 0,
      currency: fx.currency,
      metadata: {},
      payment_intent: fx.paymentIntentId,
      customer: evidence.customer ?? null,
      billing_details: { email: evidence.email ?? 'buyer@example.com' },
      outcome: { risk_level: evidence.riskLevel ?? 'normal' },
      payment_method_details: { card: { fingerprint: evidence.fingerprint ?? `fp_${fx.chargeId}` } },
      status: 'succeeded',
      livemode: false,
    }),
  /** `amountRefunded` is the charge's cumulative total, as Stripe sends it. */
  chargeRefunded: (fx: OrderFixture, amountRefunded: number) =>
    stripeEvent('charge.refunded', {
      id: fx.chargeId,
      object: 'charge',
      amount: fx.amount,
      amount_captured: fx.amount,
      amount_refunded: amountRefunded,
      refunded: amountRefunded === fx.amount,
      currency: fx.currency,
      metadata: { order_id: fx.id },
      payment_intent: fx.paymentIntentId,
      status: 'succeeded',
      livemode: false,
    }),
  /** A refund as this service's refunds API makes them (order id in the metadata); `dashboard` leaves it out. */
  refund: (
    fx: OrderFixture,
    refundId: string,
    amount: number,
    opts: { status?: string; type?: string; dashboard?: boolean } = {},
  ) =>
    stripeEvent(opts.type ?? 'refund.created', {
      id: refundId,
      object: 'refund',
      amount,
      charge: fx.chargeId,
      currency: fx.currency,
      metadata: opts.dashboard ? {} : { order_id: fx.id },
      payment_intent: fx.paymentIntentId,
      status: opts.status ?? 'succeeded',
    }),
  dispute: (fx: OrderFixture, disputeId: string, status: string, created: number, type: string) =>
    stripeEvent(type, {
      id: disputeId,
      object: 'dispute',
      amount: fx.amount,
      charge: fx.chargeId,
      currency: fx.currency,
      created,
      metadata: {},
      payment_intent: fx.paymentIntentId,
      reason: 'fraudulent',
      status,
      livemode: false,
    }),
};

/** The body exactly as sent, and a `Stripe-Signature` for it. */
export function signed(event: unknown, secret: string, opts: { timestamp?: number } = {}) {
  const payload = typeof event === 'string' ? event : JSON.stringify(event);
  const header = sdk.webhooks.generateTestHeaderString({
    payload,
    secret,
    ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
  });
  return { payload, header };
}

/** Stripe's delivery headers. */
export const deliveryHeaders = (signature: string | undefined) => ({
  'content-type': 'application/json; charset=utf-8',
  'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
  ...(signature === undefined ? {} : { 'stripe-signature': signature }),
});
