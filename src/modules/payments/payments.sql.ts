import type { Sql } from '../../ports/db.js';

/** A refund Stripe reported, or a charge's running refunded total: what the order's refunded money is made of. */
export interface RefundRecord {
  kind: 'refund' | 'charge';
  id: string;
  payment_intent_id: string | null;
  amount: number;
  /** The refund's status; null for a charge. */
  status: string | null;
}

/** Everything refunded on the order as Stripe told it, in one read: its refunds and its charges' totals. */
export const selectRefundRecords = (orderId: string): Sql => ({
  text: `select 'refund' as kind, id, payment_intent_id, amount, status from stripe_refunds where order_id = $1
         union all
         select 'charge', id, payment_intent_id, amount_refunded, null from stripe_charges where order_id = $1`,
  values: [orderId],
});

export const selectRefund = (id: string): Sql => ({
  text: 'select status from stripe_refunds where id = $1',
  values: [id],
});

export const insertRefund = (r: {
  id: string;
  orderId: string;
  chargeId: string | null;
  paymentIntentId: string | null;
  amount: number;
  currency: string;
  status: string;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_refunds (id, order_id, charge_id, payment_intent_id, amount, currency, status, event_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
  values: [r.id, r.orderId, r.chargeId, r.paymentIntentId, r.amount, r.currency, r.status, r.eventId],
});

export const updateRefundStatus = (id: string, status: string, eventId: string): Sql => ({
  text: 'update stripe_refunds set status = $2, event_id = $3, updated_at = now() where id = $1',
  values: [id, status, eventId],
});

/** Keeps the largest running refunded total a charge.refunded has told for the charge. */
export const upsertChargeRefunded = (c: {
  id: string;
  orderId: string;
  paymentIntentId: string | null;
  amountRefunded: number;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_charges (id, order_id, payment_intent_id, amount_refunded, event_id)
         values ($1, $2, $3, $4, $5)
         on conflict (id) do update
            set amount_refunded = excluded.amount_refunded, event_id = excluded.event_id, updated_at = now()
          where stripe_charges.amount_refunded < excluded.amount_refunded`,
  values: [c.id, c.orderId, c.paymentIntentId, c.amountRefunded, c.eventId],
});

export const selectDispute = (id: string): Sql => ({
  text: 'select status from stripe_disputes where id = $1',
  values: [id],
});

export const insertDispute = (d: {
  id: string;
  orderId: string;
  chargeId: string | null;
  amount: number;
  currency: string;
  status: string;
  created: number;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_disputes (id, order_id, charge_id, amount, currency, status, stripe_created_at, event_id)
         values ($1, $2, $3, $4, $5, $6, to_timestamp($7::double precision), $8)`,
  values: [d.id, d.orderId, d.chargeId, d.amount, d.currency, d.status, d.created, d.eventId],
});

export const updateDisputeStatus = (id: string, status: string, eventId: string): Sql => ({
  text: 'update stripe_disputes set status = $2, event_id = $3, updated_at = now() where id = $1',
  values: [id, status, eventId],
});

/** The order's newest dispute decides its dispute_status (ties broken by id, so the answer is stable). */
export const newestDisputeStatus = (orderId: string): Sql => ({
  text: `select status from stripe_disputes where order_id = $1 order by stripe_created_at desc, id desc limit 1`,
  values: [orderId],
});

/** What a successful charge told; the first word is kept (a charge's customer and card do not change). */
export const insertChargeDetails = (c: {
  chargeId: string;
  paymentIntentId: string | null;
  customerId: string | null;
  cardFingerprint: string | null;
  riskLevel: string | null;
  billingEmail: string | null;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_charge_details
           (charge_id, payment_intent_id, customer_id, card_fingerprint, risk_level, billing_email, event_id)
         values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (charge_id) do nothing`,
  values: [
    c.chargeId,
    c.paymentIntentId,
    c.customerId,
    c.cardFingerprint,
    c.riskLevel,
    c.billingEmail,
    c.eventId,
  ],
});

/** The newest successful charge of a PaymentIntent. */
export const selectChargeDetails = (paymentIntentId: string): Sql => ({
  text: `select charge_id, customer_id, card_fingerprint, risk_level, billing_email from stripe_charge_details
          where payment_intent_id = $1 order by recorded_at desc, charge_id desc limit 1`,
  values: [paymentIntentId],
});
