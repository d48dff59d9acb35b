import type { Sql } from '../../ports/db.js';

export const ATTEMPT_KINDS = ['checkout_session', 'refund'] as const;
export type AttemptKind = (typeof ATTEMPT_KINDS)[number];

export interface AttemptRow<P = unknown> {
  id: string;
  kind: AttemptKind;
  order_id: string;
  request_id: string | null;
  params: P;
  amount: number | null;
  status: 'pending' | 'done' | 'failed';
  stripe_object_id: string | null;
  response: Record<string, unknown> | null;
  error: { status: number; code: string; message: string; details?: Record<string, unknown> } | null;
  tries: number;
  created_at: Date;
}

export const insertAttempt = (a: {
  id: string;
  kind: AttemptKind;
  orderId: string;
  requestId: string | null;
  params: unknown;
  amount: number | null;
  firstCompletionMs: number;
}): Sql => ({
  text: `insert into stripe_attempts (id, kind, order_id, request_id, params, amount, status, next_attempt_at)
         values ($1, $2, $3, $4, $5::jsonb, $6, 'pending', now() + $7 * interval '1 millisecond')
         returning *`,
  values: [a.id, a.kind, a.orderId, a.requestId, JSON.stringify(a.params), a.amount, a.firstCompletionMs],
});

export const selectAttemptByRequest = (kind: AttemptKind, requestId: string): Sql => ({
  text: 'select * from stripe_attempts where kind = $1 and request_id = $2',
  values: [kind, requestId],
});

export const selectAttemptForUpdate = (id: string): Sql => ({
  text: 'select * from stripe_attempts where id = $1 for update',
  values: [id],
});

export const markAttemptDone = (id: string, objectId: string, response: unknown): Sql => ({
  text: `update stripe_attempts set status = 'done', stripe_object_id = $2, response = $3::jsonb, updated_at = now()
          where id = $1 and status = 'pending'`,
  values: [id, objectId, JSON.stringify(response)],
});

export const markAttemptFailed = (id: string, error: unknown): Sql => ({
  text: `update stripe_attempts set status = 'failed', error = $2::jsonb, updated_at = now()
          where id = $1 and status = 'pending'`,
  values: [id, JSON.stringify(error)],
});

/** Another request's checkout attempt on this order that has not finished yet. */
export const selectOtherPendingCheckout = (orderId: string, requestId: string | null): Sql => ({
  text: `select id from stripe_attempts
          where order_id = $1 and kind = 'checkout_session' and status = 'pending'
            and request_id is distinct from $2
          limit 1`,
  values: [orderId, requestId],
});

/** Any checkout attempt for the order that has not finished: a new session is on its way. */
export const selectPendingCheckout = (orderId: string): Sql => ({
  text: `select id from stripe_attempts
          where order_id = $1 and kind = 'checkout_session' and status = 'pending'
          limit 1`,
  values: [orderId],
});

/**
 * What the order's PaymentIntent has refunded or is refunding: refunds we asked Stripe for and not refused,
 * while Stripe has not reported them (no stripe_refunds row yet), plus every refund Stripe reported that has
 * not failed or been canceled. A refund that failed no longer counts: its money is the merchant's again.
 */
export const selectRequestedRefunds = (orderId: string, paymentIntentId: string | null): Sql => ({
  text: `select (
            coalesce((select sum(a.amount) from stripe_attempts a
                       where a.order_id = $1 and a.kind = 'refund' and a.status in ('pending', 'done')
                         and not exists (select 1 from stripe_refunds r where r.id = a.stripe_object_id)), 0)
            + coalesce((select sum(r.amount) from stripe_refunds r
                         where r.order_id = $1 and r.status not in ('failed', 'canceled')
                           and ($2::text is null or r.payment_intent_id = $2 or r.payment_intent_id is null)), 0)
          )::bigint as requested`,
  values: [orderId, paymentIntentId],
});

/**
 * Claims attempts due for completion. The claim pushes `next_attempt_at` out by the backoff before the work
 * starts, so a completer that dies mid-way leaves the row to be picked up again later, not lost.
 */
export const claimDueAttempts = (limit: number): Sql => ({
  text: `select * from stripe_attempts
          where status = 'pending' and next_attempt_at <= now()
          order by next_attempt_at
          limit $1
          for update skip locked`,
  values: [limit],
});

export const scheduleAttempt = (id: string, delayMs: number): Sql => ({
  text: `update stripe_attempts set tries = tries + 1, next_attempt_at = now() + $2 * interval '1 millisecond',
                updated_at = now()
          where id = $1`,
  values: [id, delayMs],
});
