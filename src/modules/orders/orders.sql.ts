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
  'client_ip',
  'flags',
] as const;

export const selectOrderForUpdate = (id: string): Sql => ({
  text: 'select * from orders where id = $1 for update',
  values: [id],
});

export const selectOrder = (id: string): Sql => ({
  text: 'select * from orders where id = $1',
  values: [id],
});

export const selectHistory = (id: string): Sql => ({
  text: `select seq, from_status, to_status, changes, cause, at from order_events where order_id = $1 order by seq`,
  values: [id],
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

export const insertOutbox = (m: {
  id: string;
  orderId: string;
  seq: number;
  type: string;
  payload: unknown;
}): Sql => ({
  text: `insert into outbox (id, order_id, seq, type, payload) values ($1, $2, $3, $4, $5::jsonb)`,
  values: [m.id, m.orderId, m.seq, m.type, JSON.stringify(m.payload)],
});
