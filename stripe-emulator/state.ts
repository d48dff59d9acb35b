import type Stripe from 'stripe';
import { formatAmount } from './currency.js';
import { invalidParam, invalidState, noSuch } from './errors.js';
import { newId } from './ids.js';
import { type ListPage, matchesRange, paginate } from './lists.js';
import {
  API_VERSION,
  buildCharge,
  buildDispute,
  buildLineItem,
  buildPaymentIntent,
  buildRefund,
  buildSession,
  type ChargeKind,
  cardFingerprint,
  customerDetails,
  type RiskLevel,
  snapshot,
} from './objects.js';
import {
  asArray,
  asBool,
  asEnum,
  asInt,
  asMetadata,
  asObject,
  asString,
  asStringArray,
  type Params,
  rejectUnknown,
  required,
} from './params.js';

/** What an event records about the request that caused it; both null for a buyer's action. */
export interface RequestContext {
  requestId: string | null;
  idempotencyKey: string | null;
}

export const BUYER_ACTION: RequestContext = { requestId: null, idempotencyKey: null };

type EmittedType =
  | 'checkout.session.completed'
  | 'checkout.session.async_payment_succeeded'
  | 'checkout.session.async_payment_failed'
  | 'checkout.session.expired'
  | 'payment_intent.succeeded'
  | 'payment_intent.payment_failed'
  | 'charge.succeeded'
  | 'charge.refunded'
  | 'refund.created'
  | 'charge.dispute.created'
  | 'charge.dispute.closed';

type EventOf<T extends EmittedType> = Extract<Stripe.Event, { type: T }>;
type ObjectOf<T extends EmittedType> = EventOf<T>['data']['object'];

export type CompletionOutcome = 'paid' | 'async_pending' | 'declined';

export interface CompletionOptions {
  customerEmail?: string;
  customer?: string;
  cardFingerprint?: string;
  riskLevel?: RiskLevel;
  cardLast4?: string;
}

export interface StateDeps {
  /** Milliseconds since the epoch; tests replace it to reach expiry without waiting. */
  now: () => number;
  /** Base of hosted-page urls, known once the server listens. */
  publicUrl: () => string;
  /** Called with each new event, after it is stored. */
  publish: (event: Stripe.Event) => void;
}

// Stripe's bounds for a Checkout Session's `expires_at`, measured from creation.
const MIN_EXPIRY_SECONDS = 30 * 60;
const MAX_EXPIRY_SECONDS = 24 * 60 * 60;
// Clients compute `expires_at` from their own clock a moment before the request lands; a few seconds of
// slack keeps "exactly 30 minutes from now" from failing on the boundary.
const EXPIRY_SLACK_SECONDS = 5;
// Test-mode disputes are due a week after they open, well within the range Stripe gives.
const DISPUTE_RESPONSE_SECONDS = 7 * 24 * 60 * 60;
// The card Stripe's docs use for successful test payments, and the one they use for a generic decline.
const DEFAULT_CARD = '4242424242424242';
const DECLINED_CARD = '4000000000000002';
const DEFAULT_BANK_ACCOUNT = '000123456789';

const SESSION_CREATE_PARAMS = [
  'mode',
  'line_items',
  'success_url',
  'cancel_url',
  'client_reference_id',
  'customer',
  'customer_email',
  'metadata',
  'expires_at',
  'payment_intent_data',
  'payment_method_types',
  'locale',
  'ui_mode',
  'submit_type',
  'billing_address_collection',
  'customer_creation',
  'allow_promotion_codes',
] as const;
const OPEN_DISPUTE_STATUSES = new Set(['needs_response', 'under_review', 'warning_needs_response']);
const DISPUTE_REASONS = [
  'bank_cannot_process',
  'credit_not_processed',
  'customer_initiated',
  'debit_not_authorized',
  'duplicate',
  'fraudulent',
  'general',
  'incorrect_account_details',
  'insufficient_funds',
  'product_not_received',
  'product_unacceptable',
  'subscription_canceled',
  'unrecognized',
] as const;

interface SessionExtras {
  lineItems: Stripe.LineItem[];
  paymentIntentMetadata: Record<string, string>;
  paymentIntentDescription: string | null;
  receiptEmail: string | null;
}

/** The emulator's account: every object it has made, and the rules by which they change. */
export class EmulatorState {
  private readonly sessions = new Map<string, Stripe.Checkout.Session>();
  private readonly sessionExtras = new Map<string, SessionExtras>();
  private readonly sessionByPaymentIntent = new Map<string, string>();
  private readonly paymentIntents = new Map<string, Stripe.PaymentIntent>();
  private readonly charges = new Map<string, Stripe.Charge>();
  private readonly refunds = new Map<string, Stripe.Refund>();
  private readonly disputes = new Map<string, Stripe.Dispute>();
  private readonly events = new Map<string, Stripe.Event>();

  constructor(private readonly deps: StateDeps) {}

  private nowSeconds(): number {
    return Math.floor(this.deps.now() / 1000);
  }

  createSession(params: Params): Stripe.Checkout.Session {
    rejectUnknown(params, SESSION_CREATE_PARAMS);
    const mode = required(asEnum(params['mode'], 'mode', ['payment', 'setup', 'subscription']), 'mode');
    if (mode !== 'payment') {
      throw invalidParam(
        `The emulator supports Checkout Sessions in payment mode only, not ${mode}.`,
        'mode',
      );
    }
    asEnum(params['ui_mode'], 'ui_mode', ['hosted', 'hosted_page']);
    const created = this.nowSeconds();
    const lineItems = this.parseLineItems(params['line_items'], created);
    const currency = lineItems[0]?.currency ?? 'usd';
    if (lineItems.some((item) => item.currency !== currency)) {
      throw invalidParam('All line items must be in the same currency.', 'line_items');
    }
    const customer = asString(params['customer'], 'customer');
    const customerEmail = asString(params['customer_email'], 'customer_email', 800);
    if (customer !== undefined && customerEmail !== undefined) {
      throw invalidParam(
        'You may only specify one of these parameters: customer, customer_email.',
        'customer',
      );
    }
    if (customer !== undefined && !customer.startsWith('cus_'))
      throw noSuch('customer', customer, 'customer');
    const expiresAt = asInt(params['expires_at'], 'expires_at') ?? created + MAX_EXPIRY_SECONDS;
    if (expiresAt > created + MAX_EXPIRY_SECONDS + EXPIRY_SLACK_SECONDS) {
      throw invalidParam(
        'The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.',
        'expires_at',
      );
    }
    if (expiresAt < created + MIN_EXPIRY_SECONDS - EXPIRY_SLACK_SECONDS) {
      throw invalidParam(
        'The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.',
        'expires_at',
      );
    }
    const piData = asObject(params['payment_intent_data'], 'payment_intent_data') ?? {};
    rejectUnknown(piData, ['metadata', 'description', 'receipt_email'], 'payment_intent_data');
    const id = newId('cs');
    const session = buildSession({
      id,
      created,
      expiresAt,
      currency,
      amount: lineItems.reduce((sum, item) => sum + item.amount_total, 0),
      url: `${this.deps.publicUrl()}/checkout/${id}`,
      successUrl: asUrl(params['success_url'], 'success_url'),
      cancelUrl: asUrl(params['cancel_url'], 'cancel_url'),
      clientReferenceId: asString(params['client_reference_id'], 'client_reference_id', 200) ?? null,
      customer: customer ?? null,
      customerEmail: customerEmail ?? null,
      metadata: asMetadata(params['metadata'], 'metadata') ?? {},
      paymentMethodTypes: asStringArray(params['payment_method_types'], 'payment_method_types') ?? [
        'card',
        'us_bank_account',
      ],
      locale: asString(params['locale'], 'locale') ?? null,
      submitType: asEnum(params['submit_type'], 'submit_type', ['auto', 'book', 'donate', 'pay']) ?? null,
      billingAddressCollection:
        asEnum(params['billing_address_collection'], 'billing_address_collection', ['auto', 'required']) ??
        null,
      customerCreation:
        asEnum(params['customer_creation'], 'customer_creation', ['always', 'if_required']) ?? null,
      allowPromotionCodes: asBool(params['allow_promotion_codes'], 'allow_promotion_codes') ?? null,
    });
    this.sessions.set(id, session);
    this.sessionExtras.set(id, {
      lineItems,
      paymentIntentMetadata: asMetadata(piData['metadata'], 'payment_intent_data[metadata]') ?? {},
      paymentIntentDescription: asString(piData['description'], 'payment_intent_data[description]') ?? null,
      receiptEmail: asString(piData['receipt_email'], 'payment_intent_data[receipt_email]') ?? null,
    });
    return session;
  }

  private parseLineItems(value: unknown, created: number): Stripe.LineItem[] {
    const items = asArray(value, 'line_items');
    if (!items || items.length === 0) {
      throw invalidParam('line_items is required in payment mode.', 'line_items', 'parameter_missing');
    }
    return items.map((raw, i) => {
      const at = `line_items[${i}]`;
      const item = required(asObject(raw, at), at);
      rejectUnknown(item, ['price_data', 'quantity', 'price'], at);
      const price = asString(item['price'], `${at}[price]`);
      if (price !== undefined) throw noSuch('price', price, `${at}[price]`);
      const data = required(asObject(item['price_data'], `${at}[price_data]`), `${at}[price_data]`);
      rejectUnknown(data, ['currency', 'unit_amount', 'product_data', 'tax_behavior'], `${at}[price_data]`);
      const currency = required(
        asString(data['currency'], `${at}[price_data][currency]`),
        `${at}[price_data][currency]`,
      );
      if (!/^[a-zA-Z]{3}$/.test(currency)) {
        throw invalidParam(`Invalid currency: ${currency}.`, `${at}[price_data][currency]`);
      }
      const product = required(
        asObject(data['product_data'], `${at}[price_data][product_data]`),
        `${at}[price_data][product_data]`,
      );
      rejectUnknown(
        product,
        ['name', 'description', 'metadata', 'images'],
        `${at}[price_data][product_data]`,
      );
      return buildLineItem({
        name: required(
          asString(product['name'], `${at}[price_data][product_data][name]`),
          `${at}[price_data][product_data][name]`,
        ),
        description: asString(product['description'], `${at}[price_data][product_data][description]`) ?? null,
        currency: currency.toLowerCase(),
        unitAmount: required(
          asInt(data['unit_amount'], `${at}[price_data][unit_amount]`, 0),
          `${at}[price_data][unit_amount]`,
        ),
        quantity: required(asInt(item['quantity'], `${at}[quantity]`, 1), `${at}[quantity]`),
        created,
      });
    });
  }

  getSession(id: string): Stripe.Checkout.Session {
    const session = this.sessions.get(id);
    if (!session) throw noSuch('checkout.session', id, 'session');
    return session;
  }

  /** The session's line items, for the hosted page (which is not an API call and needs no paging). */
  sessionLineItems(id: string): Stripe.LineItem[] {
    this.getSession(id);
    return this.sessionExtras.get(id)?.lineItems ?? [];
  }

  listSessions(params: Params): ListPage<Stripe.Checkout.Session> {
    rejectUnknown(params, [
      'limit',
      'starting_after',
      'ending_before',
      'payment_intent',
      'status',
      'customer',
      'created',
    ]);
    const paymentIntent = asString(params['payment_intent'], 'payment_intent');
    const status = asEnum(params['status'], 'status', ['open', 'complete', 'expired']);
    const customer = asString(params['customer'], 'customer');
    const items = [...this.sessions.values()]
      .reverse()
      .filter(
        (s) =>
          (paymentIntent === undefined || s.payment_intent === paymentIntent) &&
          (status === undefined || s.status === status) &&
          (customer === undefined || s.customer === customer) &&
          matchesRange(s.created, params, 'created'),
      );
    return paginate(items, params, '/v1/checkout/sessions');
  }

  listLineItems(id: string, params: Params): ListPage<Stripe.LineItem> {
    rejectUnknown(params, ['limit', 'starting_after', 'ending_before']);
    return paginate(this.sessionLineItems(id), params, `/v1/checkout/sessions/${id}/line_items`);
  }

  expireSession(id: string, ctx: RequestContext): Stripe.Checkout.Session {
    const session = this.getSession(id);
    if (session.status !== 'open') {
      throw invalidState(
        `Only Checkout Sessions with a status in ["open"] can be expired. This session's status is "${session.status}".`,
        'checkout_session_not_open',
      );
    }
    session.status = 'expired';
    session.url = null;
    const pi = this.sessionPaymentIntent(session);
    if (pi && pi.status === 'requires_payment_method') {
      pi.status = 'canceled';
      pi.canceled_at = this.nowSeconds();
      pi.cancellation_reason = 'abandoned';
    }
    this.emit('checkout.session.expired', session, ctx);
    return session;
  }

  /** Expires every open session whose `expires_at` has passed, as Stripe does on its own. */
  expireDue(): void {
    const now = this.nowSeconds();
    for (const session of this.sessions.values()) {
      if (session.status === 'open' && session.expires_at <= now)
        this.expireSession(session.id, BUYER_ACTION);
    }
  }

  /**
   * The buyer's attempt at paying: from the hosted page or the test helper. A declined card leaves the
   * session open for another try, as Checkout does.
   */
  completeSession(
    id: string,
    outcome: CompletionOutcome,
    opts: CompletionOptions,
    ctx: RequestContext,
  ): Stripe.Checkout.Session {
    const session = this.getSession(id);
    if (session.status === 'open' && session.expires_at <= this.nowSeconds())
      this.expireSession(id, BUYER_ACTION);
    if (session.status !== 'open') {
      throw invalidState(
        `Checkout Session ${id} is ${session.status ?? 'unknown'}; only open sessions can be paid.`,
        'checkout_session_not_open',
      );
    }
    const extras = this.sessionExtras.get(id);
    const email = opts.customerEmail ?? session.customer_email ?? null;
    const customer = opts.customer ?? (typeof session.customer === 'string' ? session.customer : null);
    let pi = this.sessionPaymentIntent(session);
    if (!pi) {
      pi = buildPaymentIntent({
        created: this.nowSeconds(),
        amount: session.amount_total ?? 0,
        currency: session.currency ?? 'usd',
        customer,
        description: extras?.paymentIntentDescription ?? null,
        receiptEmail: extras?.receiptEmail ?? null,
        metadata: { ...(extras?.paymentIntentMetadata ?? {}) },
        paymentMethodTypes: session.payment_method_types,
      });
      this.paymentIntents.set(pi.id, pi);
      this.sessionByPaymentIntent.set(pi.id, id);
      session.payment_intent = pi.id;
    }
    pi.customer = customer;
    const kind: ChargeKind =
      outcome === 'paid' ? 'card_succeeded' : outcome === 'declined' ? 'card_declined' : 'bank_pending';
    const number =
      outcome === 'declined' ? DECLINED_CARD : outcome === 'paid' ? DEFAULT_CARD : DEFAULT_BANK_ACCOUNT;
    const paymentMethod = newId('pm');
    const charge = buildCharge({
      kind,
      created: this.nowSeconds(),
      paymentIntent: pi,
      paymentMethod,
      email,
      fingerprint: opts.cardFingerprint ?? cardFingerprint(number),
      last4: opts.cardLast4 ?? number.slice(-4),
      riskLevel: opts.riskLevel ?? (outcome === 'async_pending' ? 'not_assessed' : 'normal'),
    });
    this.charges.set(charge.id, charge);
    pi.latest_charge = charge.id;
    pi.payment_method = paymentMethod;

    if (outcome === 'declined') {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = {
        type: 'card_error',
        code: 'card_declined',
        decline_code: 'generic_decline',
        message: 'Your card was declined.',
        charge: charge.id,
        payment_method_type: 'card',
      };
      this.emit('payment_intent.payment_failed', pi, ctx);
      return session;
    }

    pi.last_payment_error = null;
    session.status = 'complete';
    session.url = null;
    session.customer = customer;
    session.customer_details = customerDetails(email);
    if (outcome === 'paid') {
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
      session.payment_status = 'paid';
      this.emit('charge.succeeded', charge, ctx);
      this.emit('payment_intent.succeeded', pi, ctx);
    } else {
      pi.status = 'processing';
      pi.payment_method_types = ['us_bank_account'];
    }
    this.emit('checkout.session.completed', session, ctx);
    return session;
  }

  /** Settles a delayed payment (a bank debit) that Checkout left `processing`. */
  settleAsyncPayment(
    piId: string,
    result: 'succeeded' | 'failed',
    ctx: RequestContext,
  ): Stripe.PaymentIntent {
    const pi = this.getPaymentIntent(piId);
    if (pi.status !== 'processing') {
      throw invalidState(
        `PaymentIntent ${piId} is ${pi.status}; only a processing PaymentIntent can be settled.`,
        'payment_intent_unexpected_state',
      );
    }
    const charge = typeof pi.latest_charge === 'string' ? this.charges.get(pi.latest_charge) : undefined;
    const sessionId = this.sessionByPaymentIntent.get(piId);
    const session = sessionId ? this.sessions.get(sessionId) : undefined;
    if (result === 'succeeded') {
      pi.status = 'succeeded';
      pi.amount_received = pi.amount;
      if (charge) {
        charge.status = 'succeeded';
        charge.paid = true;
        this.emit('charge.succeeded', charge, ctx);
      }
      this.emit('payment_intent.succeeded', pi, ctx);
      if (session) {
        session.payment_status = 'paid';
        this.emit('checkout.session.async_payment_succeeded', session, ctx);
      }
    } else {
      pi.status = 'requires_payment_method';
      pi.last_payment_error = {
        type: 'invalid_request_error',
        code: 'payment_intent_payment_attempt_failed',
        message: "The customer's bank account could not be debited.",
        payment_method_type: 'us_bank_account',
        ...(charge ? { charge: charge.id } : {}),
      };
      if (charge) {
        charge.status = 'failed';
        charge.failure_code = 'insufficient_funds';
        charge.failure_message = "The customer's account has insufficient funds to cover this payment.";
      }
      this.emit('payment_intent.payment_failed', pi, ctx);
      if (session) this.emit('checkout.session.async_payment_failed', session, ctx);
    }
    return pi;
  }

  private sessionPaymentIntent(session: Stripe.Checkout.Session): Stripe.PaymentIntent | undefined {
    return typeof session.payment_intent === 'string'
      ? this.paymentIntents.get(session.payment_intent)
      : undefined;
  }

  getPaymentIntent(id: string): Stripe.PaymentIntent {
    const pi = this.paymentIntents.get(id);
    if (!pi) throw noSuch('payment_intent', id, 'intent');
    return pi;
  }

  getCharge(id: string, param = 'charge'): Stripe.Charge {
    const charge = this.charges.get(id);
    if (!charge) throw noSuch('charge', id, param);
    return charge;
  }

  createRefund(params: Params, ctx: RequestContext): Stripe.Refund {
    rejectUnknown(params, ['charge', 'payment_intent', 'amount', 'reason', 'metadata']);
    const chargeId = asString(params['charge'], 'charge');
    const piId = asString(params['payment_intent'], 'payment_intent');
    const amountParam = asInt(params['amount'], 'amount', 1);
    const reason = asEnum(params['reason'], 'reason', ['duplicate', 'fraudulent', 'requested_by_customer']);
    const metadata = asMetadata(params['metadata'], 'metadata') ?? {};
    if (chargeId === undefined && piId === undefined) {
      throw invalidParam(
        'One of the following params should be provided for this request: payment_intent or charge.',
        'charge',
        'parameter_missing',
      );
    }
    let charge: Stripe.Charge;
    if (chargeId !== undefined) {
      charge = this.getCharge(chargeId);
      if (piId !== undefined && charge.payment_intent !== piId) {
        throw invalidParam(`Charge ${chargeId} does not belong to PaymentIntent ${piId}.`, 'payment_intent');
      }
    } else {
      const pi = this.paymentIntents.get(piId ?? '');
      if (!pi) throw noSuch('payment_intent', piId ?? '', 'payment_intent');
      const latest = typeof pi.latest_charge === 'string' ? this.charges.get(pi.latest_charge) : undefined;
      if (!latest || pi.status !== 'succeeded') {
        throw invalidState(
          'This PaymentIntent does not have a successful charge to refund.',
          undefined,
          'payment_intent',
        );
      }
      charge = latest;
    }
    if (charge.status !== 'succeeded') {
      throw invalidState(
        `Charge ${charge.id} has not succeeded, so it cannot be refunded.`,
        undefined,
        'charge',
      );
    }
    const dispute = [...this.disputes.values()].find((d) => d.charge === charge.id);
    if (dispute && dispute.status !== 'won') {
      throw invalidState(
        `Charge ${charge.id} has been charged back; cannot issue a refund.`,
        'charge_disputed',
      );
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) {
      throw invalidState(`Charge ${charge.id} has already been refunded.`, 'charge_already_refunded');
    }
    const amount = amountParam ?? remaining;
    if (amount > remaining) {
      throw invalidState(
        `Refund amount (${formatAmount(amount, charge.currency)}) is greater than unrefunded amount on charge (${formatAmount(remaining, charge.currency)})`,
        'amount_too_large',
        'amount',
      );
    }
    const refund = buildRefund({
      created: this.nowSeconds(),
      amount,
      charge,
      reason: reason ?? null,
      metadata,
    });
    this.refunds.set(refund.id, refund);
    const previous = { amount_refunded: charge.amount_refunded, refunded: charge.refunded };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    this.emit('refund.created', refund, ctx);
    this.emit('charge.refunded', charge, ctx, previous);
    return refund;
  }

  getRefund(id: string): Stripe.Refund {
    const refund = this.refunds.get(id);
    if (!refund) throw noSuch('refund', id, 'refund');
    return refund;
  }

  listRefunds(params: Params): ListPage<Stripe.Refund> {
    rejectUnknown(params, [
      'limit',
      'starting_after',
      'ending_before',
      'charge',
      'payment_intent',
      'created',
    ]);
    const charge = asString(params['charge'], 'charge');
    const pi = asString(params['payment_intent'], 'payment_intent');
    const items = [...this.refunds.values()]
      .reverse()
      .filter(
        (r) =>
          (charge === undefined || r.charge === charge) &&
          (pi === undefined || r.payment_intent === pi) &&
          matchesRange(r.created, params, 'created'),
      );
    return paginate(items, params, '/v1/refunds');
  }

  createDispute(chargeId: string, params: Params, ctx: RequestContext): Stripe.Dispute {
    rejectUnknown(params, ['amount', 'reason']);
    const charge = this.getCharge(chargeId);
    if (charge.status !== 'succeeded') {
      throw invalidState(
        `Charge ${chargeId} has not succeeded, so it cannot be disputed.`,
        undefined,
        'charge',
      );
    }
    if ([...this.disputes.values()].some((d) => d.charge === chargeId)) {
      throw invalidState(`Charge ${chargeId} already has a dispute.`, 'charge_disputed');
    }
    const disputable = charge.amount - charge.amount_refunded;
    const amount = asInt(params['amount'], 'amount', 1) ?? disputable;
    if (disputable <= 0 || amount > disputable) {
      throw invalidState(
        `Charge ${chargeId} has no unrefunded amount of that size to dispute.`,
        undefined,
        'amount',
      );
    }
    const created = this.nowSeconds();
    const dispute = buildDispute({
      created,
      amount,
      charge,
      reason: asEnum(params['reason'], 'reason', DISPUTE_REASONS) ?? 'fraudulent',
      dueBy: created + DISPUTE_RESPONSE_SECONDS,
    });
    this.disputes.set(dispute.id, dispute);
    charge.disputed = true;
    this.emit('charge.dispute.created', dispute, ctx);
    return dispute;
  }

  closeDispute(id: string, params: Params, ctx: RequestContext): Stripe.Dispute {
    rejectUnknown(params, ['status']);
    const status = required(asEnum(params['status'], 'status', ['won', 'lost']), 'status');
    const dispute = this.getDispute(id);
    if (!OPEN_DISPUTE_STATUSES.has(dispute.status)) {
      throw invalidState(`Dispute ${id} is already closed (${dispute.status}).`, 'dispute_already_closed');
    }
    const previous = { status: dispute.status };
    dispute.status = status;
    dispute.is_charge_refundable = status === 'won';
    this.emit('charge.dispute.closed', dispute, ctx, previous);
    return dispute;
  }

  getDispute(id: string): Stripe.Dispute {
    const dispute = this.disputes.get(id);
    if (!dispute) throw noSuch('dispute', id, 'dispute');
    return dispute;
  }

  private emit<T extends EmittedType>(
    type: T,
    object: ObjectOf<T>,
    ctx: RequestContext,
    previous?: Partial<ObjectOf<T>>,
  ): void {
    const event = {
      id: newId('evt'),
      object: 'event',
      api_version: API_VERSION,
      created: this.nowSeconds(),
      data: { object: snapshot(object), ...(previous ? { previous_attributes: previous } : {}) },
      livemode: false,
      pending_webhooks: 0,
      request: { id: ctx.requestId, idempotency_key: ctx.idempotencyKey },
      type,
    } satisfies Stripe.EventBase as Stripe.Event;
    this.events.set(event.id, event);
    this.deps.publish(event);
  }

  getEvent(id: string): Stripe.Event {
    const event = this.events.get(id);
    if (!event) throw noSuch('event', id, 'id');
    return event;
  }

  listEvents(params: Params): ListPage<Stripe.Event> {
    rejectUnknown(params, [
      'limit',
      'starting_after',
      'ending_before',
      'type',
      'types',
      'created',
      'delivery_success',
    ]);
    const type = asString(params['type'], 'type');
    const types = asStringArray(params['types'], 'types');
    if (type !== undefined && types !== undefined) {
      throw invalidParam('You may only specify one of these parameters: type, types.', 'types');
    }
    const wanted = types ?? (type === undefined ? undefined : [type]);
    const deliverySuccess = asBool(params['delivery_success'], 'delivery_success');
    const items = [...this.events.values()]
      .reverse()
      .filter(
        (e) =>
          (wanted === undefined || wanted.some((pattern) => typeMatches(pattern, e.type))) &&
          (deliverySuccess === undefined || (e.pending_webhooks === 0) === deliverySuccess) &&
          matchesRange(e.created, params, 'created'),
      );
    return paginate(items, params, '/v1/events');
  }

  /** Resolves `expand[]` fields: ids of objects this account holds, and lists Stripe includes on request. */
  expandField = (owner: Record<string, unknown>, field: string): unknown => {
    const value = owner[field];
    if (typeof value === 'string') {
      const found =
        this.sessions.get(value) ??
        this.paymentIntents.get(value) ??
        this.charges.get(value) ??
        this.refunds.get(value) ??
        this.disputes.get(value);
      return found ? snapshot(found) : undefined;
    }
    const id = typeof owner['id'] === 'string' ? owner['id'] : '';
    if (owner['object'] === 'checkout.session' && field === 'line_items' && this.sessions.has(id)) {
      return snapshot(this.listLineItems(id, { limit: '100' }));
    }
    if (owner['object'] === 'charge' && field === 'refunds' && this.charges.has(id)) {
      return snapshot(this.listRefunds({ charge: id, limit: '100' }));
    }
    return undefined;
  };
}

/** Stripe's `type` filter takes an exact name or a group such as `charge.*` or `charge.dispute.*`. */
function typeMatches(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

function asUrl(value: unknown, param: string): string | null {
  const text = asString(value, param, 5000);
  if (text === undefined) return null;
  // `{CHECKOUT_SESSION_ID}` is not valid in a URL until it is replaced; check the URL with it filled in.
  if (!URL.canParse(text.replaceAll('{CHECKOUT_SESSION_ID}', 'cs_test'))) {
    throw invalidParam('Not a valid URL', param, 'url_invalid');
  }
  return text;
}
