import type { Sql } from '../../ports/db.js';

export interface CheckoutSessionRow {
  id: string;
  order_id: string;
  call_id: string;
  url: string | null;
  amount_total: number;
  currency: string;
  /** The order fields the checkout that made the session set (what it sold, to whom). */
  order_fields: Record<string, unknown>;
  expires_at: Date;
  superseded_at: Date | null;
}

/** The order's sessions not yet replaced, for a new checkout to expire (again, if an earlier try failed). */
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

export const insertSession = (s: {
  id: string;
  orderId: string;
  callId: string;
  url: string | null;
  amountTotal: number;
  currency: string;
  orderFields: Record<string, unknown>;
  expiresAt: number;
}): Sql => ({
  text: `insert into checkout_sessions (id, order_id, call_id, url, amount_total, currency, order_fields, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7::jsonb, to_timestamp($8::double precision))
         on conflict (id) do nothing`,
  values: [
    s.id,
    s.orderId,
    s.callId,
    s.url,
    s.amountTotal,
    s.currency,
    JSON.stringify(s.orderFields),
    s.expiresAt,
  ],
});

export const selectSession = (id: string): Sql => ({
  text: 'select * from checkout_sessions where id = $1',
  values: [id],
});

export const selectOutcome = (sessionId: string): Sql => ({
  text: 'select outcome from stripe_checkout_outcomes where session_id = $1',
  values: [sessionId],
});

export const insertOutcome = (o: {
  sessionId: string;
  orderId: string;
  outcome: 'paid' | 'failed';
  eventId: string;
}): Sql => ({
  text: `insert into stripe_checkout_outcomes (session_id, order_id, outcome, event_id) values ($1, $2, $3, $4)
         on conflict (session_id) do nothing`,
  values: [o.sessionId, o.orderId, o.outcome, o.eventId],
});

/** The order's Checkout Sessions that asked exactly this amount, with the outcome recorded for each. */
export const selectSessionsCharging = (
  orderId: string,
  amount: number | null,
  currency: string | null,
): Sql => ({
  text: `select s.id, o.outcome from checkout_sessions s
           left join stripe_checkout_outcomes o on o.session_id = s.id
          where s.order_id = $1 and s.amount_total = $2::bigint and s.currency = $3::text`,
  values: [orderId, amount, currency],
});
