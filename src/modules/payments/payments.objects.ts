import { z } from 'zod';

/**
 * The parts of Stripe's objects the payments domain reads, checked when they are read. Loose objects: Stripe
 * adds fields in every API version, and a field we do not read must never make an event unreadable.
 */

// Expandable references arrive as an id, or as the whole object when a request asked to expand them.
const ref = z
  .union([z.string(), z.looseObject({ id: z.string() })])
  .nullish()
  .transform((v) => (v == null ? null : typeof v === 'string' ? v : v.id));
const metadata = z
  .record(z.string(), z.string())
  .nullish()
  .transform((m) => m ?? {});
const amount = z.number().int().nonnegative();
const currency = z.string().regex(/^[a-z]{3}$/);

export const SessionSchema = z.looseObject({
  id: z.string(),
  object: z.literal('checkout.session'),
  amount_total: amount.nullable(),
  currency: currency.nullable(),
  client_reference_id: z.string().nullish(),
  metadata,
  payment_intent: ref,
  payment_status: z.string(),
  customer: ref,
  customer_email: z.string().nullish(),
  customer_details: z.looseObject({ email: z.string().nullish() }).nullish(),
});

export const PaymentIntentSchema = z.looseObject({
  id: z.string(),
  object: z.literal('payment_intent'),
  amount,
  amount_received: amount.nullish(),
  currency,
  metadata,
  customer: ref,
});

export const ChargeSchema = z.looseObject({
  id: z.string(),
  object: z.literal('charge'),
  amount,
  amount_refunded: amount,
  currency,
  metadata,
  payment_intent: ref,
  customer: ref,
  billing_details: z.looseObject({ email: z.string().nullish() }).nullish(),
  // Radar's verdict (`normal`, `elevated`, `highest`); absent for charges Radar did not score.
  outcome: z.looseObject({ risk_level: z.string().nullish() }).nullish(),
  payment_method_details: z
    .looseObject({ card: z.looseObject({ fingerprint: z.string().nullish() }).nullish() })
    .nullish(),
});

export const RefundSchema = z.looseObject({
  id: z.string(),
  object: z.literal('refund'),
  amount,
  currency,
  charge: ref,
  payment_intent: ref,
  metadata,
  status: z.string().nullish(),
});

export const DisputeSchema = z.looseObject({
  id: z.string(),
  object: z.literal('dispute'),
  amount,
  currency,
  charge: ref,
  payment_intent: ref,
  status: z.string(),
  created: z.number().int().nonnegative(),
});

export type Session = z.infer<typeof SessionSchema>;
export type PaymentIntent = z.infer<typeof PaymentIntentSchema>;
export type Charge = z.infer<typeof ChargeSchema>;
export type Refund = z.infer<typeof RefundSchema>;
export type Dispute = z.infer<typeof DisputeSchema>;

/** Where the order id travels (DESIGN §3): `client_reference_id`, then `metadata.order_id`. */
export const ORDER_ID_METADATA_KEY = 'order_id';

/**
 * A dispute's Stripe status as the order shows it. Inquiries (`warning_*`) count as disputes; an inquiry
 * closed without a chargeback, or a dispute prevented, is a win for the merchant.
 */
export function disputeStatusOf(stripeStatus: string): 'open' | 'won' | 'lost' {
  if (stripeStatus === 'lost') return 'lost';
  if (stripeStatus === 'won' || stripeStatus === 'warning_closed' || stripeStatus === 'prevented')
    return 'won';
  return 'open';
}

/**
 * A refund's status, ranked so that a late event never moves it back: a refund reported succeeded is not
 * pending again because the older `refund.created` arrived last.
 */
export function refundStatusRank(status: string): number {
  if (status === 'succeeded') return 1;
  if (status === 'failed' || status === 'canceled') return 2;
  return 0;
}
