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

/** The order's sessions not yet replaced, for a new attempt to expire (again, if an earlier try failed). */
export const selectUnsupersededSessions = (orderId: string): Sql => ({
  text: `select id from checkout_sessions where order_id = $1 and superseded_at is null order by created_at, id`,
  values: [orderId],
});

/** Marks the sessions a new one replaced, in the transaction that stores the new one. */
export const supersedeSessions = (orderId: string, ids: string[]): Sql => ({
  text: `update checkout_sessions set superseded_at = now()
          where order_id = $1 and id = any($2::text[]) and superseded_at is null`,
  values: [orderId, ids],
});

/** The order's sessions not replaced, other than `sessionId`: the ones a buyer may still pay. */
export const selectOtherUnsupersededSessions = (orderId: string, sessionId: string): Sql => ({
  text: `select id from checkout_sessions
          where order_id = $1 and id <> $2 and superseded_at is null
          order by created_at, id`,
  values: [orderId, sessionId],
});

/** A session as a payment for it is checked: what it charged, and the order fields its checkout set. */
export interface SessionCharge {
  order_id: string;
  amount_total: number;
  currency: string;
  superseded_at: Date | null;
  order_fields: Record<string, unknown>;
}

export const selectSessionCharge = (sessionId: string): Sql => ({
  text: `select s.order_id, s.amount_total, s.currency, s.superseded_at, a.params -> 'order' as order_fields
           from checkout_sessions s join stripe_attempts a on a.id = s.attempt_id
          where s.id = $1`,
  values: [sessionId],
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
