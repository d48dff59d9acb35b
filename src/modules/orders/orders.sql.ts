import type { Sql } from '../../ports/db.js';

/** Columns of `orders` that changes may set; the rest (id, seq, timestamps) belong to the service. */
export const MUTABLE_FIELDS = [
  'status',
  'dispute_status',
  'amount_paid',
  'amount_refunded',
  'customer_email',
  'checkout_session_id',
  'payment_intent_id',
  'line_items',
  'amount_total',
  'currency',
  'referral_code',
  'referral_affiliate_id',
  'referral_commission_id',
  'client_ip',
  'flags',
] as const;

const JSON_FIELDS: ReadonlySet<string> = new Set(['line_items', 'flags']);

export const insertOrder = (o: {
  id: string;
  currency: string;
  amount_total: number;
  line_items: unknown;
  customer_email?: string | null | undefined;
  checkout_session_id?: string | null | undefined;
  payment_intent_id?: string | null | undefined;
  referral_code?: string | null | undefined;
  referral_affiliate_id?: string | null | undefined;
  client_ip?: string | null | undefined;
  seq: number;
}): Sql => ({
  text: `insert into orders (id, status, currency, amount_total, line_items, customer_email, checkout_session_id,
                             payment_intent_id, referral_code, referral_affiliate_id, client_ip, seq)
         values ($1, 'awaiting_payment', $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, $11)
         returning *`,
  values: [
    o.id,
    o.currency,
    o.amount_total,
    JSON.stringify(o.line_items),
    o.customer_email ?? null,
    o.checkout_session_id ?? null,
    o.payment_intent_id ?? null,
    o.referral_code ?? null,
    o.referral_affiliate_id ?? null,
    o.client_ip ?? null,
    o.seq,
  ],
});

/**
 * Sets `fields` (each checked against MUTABLE_FIELDS, since column names cannot be parameters), takes the
 * next seq and writes that seq's `order_events` diff, in one statement (one round trip per change). With no
 * field to set it still takes the seq: announcing an order is a change of its own.
 */
export function updateOrder(
  id: string,
  fields: Record<string, unknown>,
  history: { from: string | null; changes: unknown; cause: string },
): Sql {
  const names = Object.keys(fields);
  for (const name of names) {
    if (!(MUTABLE_FIELDS as readonly string[]).includes(name))
      throw new Error(`orders.${name} is not mutable`);
  }
  const sets = names.map((name, i) => `${name} = $${i + 5}${JSON_FIELDS.has(name) ? '::jsonb' : ''}`);
  return {
    text: `with after as (
             update orders set ${[...sets, 'seq = seq + 1', 'updated_at = now()'].join(', ')}
              where id = $1
              returning *
           ), history as (
             insert into order_events (order_id, seq, from_status, to_status, changes, cause)
             select id, seq, $2::text, status, $3::jsonb, $4::text from after
           )
           select * from after`,
    values: [
      id,
      history.from,
      JSON.stringify(history.changes),
      history.cause,
      ...names.map((name) => (JSON_FIELDS.has(name) ? JSON.stringify(fields[name]) : fields[name])),
    ],
  };
}

export const selectOrderForUpdate = (id: string): Sql => ({
  text: 'select * from orders where id = $1 for update',
  values: [id],
});

export const selectOrder = (id: string): Sql => ({
  text: 'select * from orders where id = $1',
  values: [id],
});

/** History up to `seq`, the order row's own: a change committed after the row was read is not half shown. */
export const selectHistory = (id: string, seq: number): Sql => ({
  text: `select seq, from_status, to_status, changes, cause, at from order_events
         where order_id = $1 and seq <= $2 order by seq`,
  values: [id, seq],
});

export const insertOrderEvent = (e: {
  orderId: string;
  seq: number;
  from: string | null;
  to: string;
  changes: unknown;
  cause: string;
}): Sql => ({
  text: `insert into order_events (order_id, seq, from_status, to_status, changes, cause)
         values ($1, $2, $3, $4, $5::jsonb, $6)`,
  values: [e.orderId, e.seq, e.from, e.to, JSON.stringify(e.changes), e.cause],
});

/** The newest order charged through this PaymentIntent (events that name only the PaymentIntent). */
export const selectOrderIdByPaymentIntent = (paymentIntentId: string): Sql => ({
  text: `select id from orders where payment_intent_id = $1 order by created_at desc limit 1`,
  values: [paymentIntentId],
});
