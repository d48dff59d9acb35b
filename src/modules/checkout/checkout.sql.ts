import type { Sql } from '../../ports/db.js';

export interface CheckoutSessionRow {
  id: string;
  order_id: string;
  attempt_id: string;
  url: string | null;
  amount_total: number;
  currency: string;
  expires_at: Date;
  superseded_at: Date | null;
}

/** Marks the order's current sessions as replaced and returns them, for the new attempt to expire. */
export const supersedeSessions = (orderId: string): Sql => ({
  text: `update checkout_sessions set superseded_at = now()
          where order_id = $1 and superseded_at is null
          returning id`,
  values: [orderId],
});

export const insertSession = (s: {
  id: string;
  orderId: string;
  attemptId: string;
  url: string | null;
  amountTotal: number;
  currency: string;
  expiresAt: number;
}): Sql => ({
  text: `insert into checkout_sessions (id, order_id, attempt_id, url, amount_total, currency, expires_at)
         values ($1, $2, $3, $4, $5, $6, to_timestamp($7::double precision))
         on conflict (id) do nothing`,
  values: [s.id, s.orderId, s.attemptId, s.url, s.amountTotal, s.currency, s.expiresAt],
});

export const selectSession = (id: string): Sql => ({
  text: 'select * from checkout_sessions where id = $1',
  values: [id],
});
