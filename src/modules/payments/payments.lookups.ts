import type Stripe from 'stripe';
import type { ChargeDetails } from './payments.facts.js';
import { ORDER_ID_METADATA_KEY } from './payments.objects.js';

/**
 * What only Stripe can say, asked outside any transaction (the inbox's lookup step) and handed back to the
 * event's next try as a `PaymentResolution`.
 */
export type PaymentResolution = {
  /** The order a PaymentIntent or Charge belongs to, from Stripe's metadata (null: none of ours). */
  orderId?: string | null;
  /** The Checkout Session that made a PaymentIntent (null: none did). */
  sessionOfPaymentIntent?: string | null;
  /** The successful charge of the payment being captured (null: Stripe has none to show). */
  charge?: ChargeDetails | null;
};

/** Where an event's order is: named outright, or to be found through its PaymentIntent or Charge. */
export interface OrderLocator {
  orderId: string | null;
  paymentIntentId: string | null;
  chargeId: string | null;
}

const missing = (err: unknown) => (err as { code?: string }).code === 'resource_missing';

/** The order id Stripe's metadata carries for a PaymentIntent or Charge; null when Stripe has no such object. */
export async function orderIdAtStripe(stripe: Stripe, locator: OrderLocator): Promise<string | null> {
  try {
    let paymentIntentId = locator.paymentIntentId;
    if (!paymentIntentId && locator.chargeId) {
      const charge: Stripe.Charge = await stripe.charges.retrieve(locator.chargeId);
      const fromCharge = charge.metadata?.[ORDER_ID_METADATA_KEY];
      if (fromCharge) return fromCharge;
      paymentIntentId =
        typeof charge.payment_intent === 'string'
          ? charge.payment_intent
          : (charge.payment_intent?.id ?? null);
    }
    if (!paymentIntentId) return null;
    const pi: Stripe.PaymentIntent = await stripe.paymentIntents.retrieve(paymentIntentId);
    return pi.metadata?.[ORDER_ID_METADATA_KEY] ?? null;
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
}

/** What a charge says of who paid and how, as `charge.succeeded` would have told it. */
export const chargeDetailsOf = (charge: {
  id: string;
  customer: string | null;
  billing_details?: { email?: string | null | undefined } | null | undefined;
  outcome?: { risk_level?: string | null | undefined } | null | undefined;
  payment_method_details?:
    | { card?: { fingerprint?: string | null | undefined } | null | undefined }
    | null
    | undefined;
}): ChargeDetails => ({
  charge_id: charge.id,
  customer_id: charge.customer,
  card_fingerprint: charge.payment_method_details?.card?.fingerprint ?? null,
  risk_level: charge.outcome?.risk_level ?? null,
  billing_email: charge.billing_details?.email ?? null,
});

/** The Checkout Session that made a PaymentIntent, which the PaymentIntent itself does not name. */
export async function sessionAtStripe(stripe: Stripe, paymentIntentId: string): Promise<string | null> {
  const page = await stripe.checkout.sessions.list({ payment_intent: paymentIntentId, limit: 1 });
  return page.data[0]?.id ?? null;
}

/** The PaymentIntent's successful charge, for a capture whose `charge.succeeded` has not arrived (yet). */
export async function chargeAtStripe(stripe: Stripe, paymentIntentId: string): Promise<ChargeDetails | null> {
  try {
    const pi = await stripe.paymentIntents.retrieve(paymentIntentId, { expand: ['latest_charge'] });
    const charge = pi.latest_charge;
    if (!charge || typeof charge === 'string' || charge.status !== 'succeeded') return null;
    const customer = typeof charge.customer === 'string' ? charge.customer : (charge.customer?.id ?? null);
    return chargeDetailsOf({ ...charge, customer });
  } catch (err) {
    if (missing(err)) return null;
    throw err;
  }
}

/** A refund as Stripe lists it; `order_id` is the order its metadata names (null: not made by this service). */
export interface ListedRefund {
  id: string;
  payment_intent_id: string | null;
  amount: number;
  status: string | null;
  order_id: string | null;
}

/**
 * Every refund Stripe holds for a PaymentIntent, all pages: the only way to learn by id of a refund made in the
 * dashboard when its `refund.created` never came (an endpoint not subscribed to it) or has not come yet.
 */
export async function refundsAtStripe(stripe: Stripe, paymentIntentId: string): Promise<ListedRefund[]> {
  const listed: ListedRefund[] = [];
  try {
    for await (const r of stripe.refunds.list({ payment_intent: paymentIntentId, limit: 100 })) {
      listed.push({
        id: r.id,
        payment_intent_id:
          typeof r.payment_intent === 'string' ? r.payment_intent : (r.payment_intent?.id ?? null),
        amount: r.amount,
        status: r.status,
        order_id: r.metadata?.[ORDER_ID_METADATA_KEY] ?? null,
      });
    }
  } catch (err) {
    if (missing(err)) return [];
    throw err;
  }
  return listed;
}
