import type { QueueTable } from '../../jobs/index.js';
import type { Sql } from '../../ports/db.js';

export const STRIPE_CALL_KINDS = ['checkout_session', 'refund'] as const;
export type StripeCallKind = (typeof STRIPE_CALL_KINDS)[number];

/** The error a failed call answers with, now and on every retry of its request. */
export interface StoredError {
  status: number;
  code: string;
  message: string;
  details?: Record<string, unknown>;
}

export interface StripeCallRow<P = unknown> {
  id: string;
  kind: StripeCallKind;
  order_id: string;
  request_id: string | null;
  params: P;
  amount: number | null;
  status: 'pending' | 'done' | 'failed';
  stripe_object_id: string | null;
  response: Record<string, unknown> | null;
  error: StoredError | null;
  /** Tries started: the request's own, then each of the completer's. */
  attempts: number;
  created_at: Date;
}

/** Phase 1: the call as it will be made. The request's own try holds it until `leaseMs` have passed. */
export const insertCall = (c: {
  id: string;
  kind: StripeCallKind;
  orderId: string;
  requestId: string | null;
  params: unknown;
  amount: number | null;
  leaseMs: number;
}): Sql => ({
  text: `insert into stripe_calls (id, kind, order_id, request_id, params, amount, status, attempts, next_attempt_at)
         values ($1, $2, $3, $4, $5::jsonb, $6, 'pending', 1, now() + $7::integer * interval '1 millisecond')
         returning *`,
  values: [c.id, c.kind, c.orderId, c.requestId, JSON.stringify(c.params), c.amount, c.leaseMs],
});

export const selectCallByRequest = (kind: StripeCallKind, requestId: string): Sql => ({
  text: 'select * from stripe_calls where kind = $1 and request_id = $2',
  values: [kind, requestId],
});

export const selectCallForUpdate = (id: string): Sql => ({
  text: 'select * from stripe_calls where id = $1 for update',
  values: [id],
});

export const markCallDone = (id: string, objectId: string, response: unknown): Sql => ({
  text: `update stripe_calls set status = 'done', stripe_object_id = $2, response = $3::jsonb, updated_at = now()
          where id = $1 and status = 'pending'`,
  values: [id, objectId, JSON.stringify(response)],
});

export const markCallFailed = (id: string, error: StoredError): Sql => ({
  text: `update stripe_calls set status = 'failed', error = $2::jsonb, updated_at = now()
          where id = $1 and status = 'pending'`,
  values: [id, JSON.stringify(error)],
});

/** The completer's last try did not get an answer either: the call fails for good, fenced by its try. */
const giveUpCall = (id: string, attempts: number, lastError: string | null): Sql => ({
  text: `update stripe_calls set status = 'failed', error = $3::jsonb, last_error = $4, updated_at = now()
          where id = $1 and attempts = $2::integer and status = 'pending'`,
  values: [
    id,
    attempts,
    JSON.stringify({
      status: 502,
      code: 'stripe_unreachable',
      message: `Stripe did not answer after ${attempts} tries`,
    } satisfies StoredError),
    lastError,
  ],
});

/** A pending call of `kind` on the order; with `exceptRequestId`, one of another request. */
export const selectPendingCall = (
  orderId: string,
  kind: StripeCallKind,
  exceptRequestId: string | null,
): Sql => ({
  text: `select id from stripe_calls
          where order_id = $1 and kind = $2 and status = 'pending'
            and ($3::text is null or request_id is distinct from $3)
          limit 1`,
  values: [orderId, kind, exceptRequestId],
});

/** The order's refunds asked of Stripe and not refused: pending ones, and done ones with their refund id. */
export const selectRefundCalls = (orderId: string): Sql => ({
  text: `select stripe_object_id, amount from stripe_calls
          where order_id = $1 and kind = 'refund' and status in ('pending', 'done')`,
  values: [orderId],
});

/**
 * Calls as a queue (src/jobs): a call left pending by a crash or an outage is finished by the completer. After
 * the last try the call fails for good with `stripe_unreachable`, so that its request answers that from then on.
 */
export const STRIPE_CALLS_QUEUE: QueueTable = {
  table: 'stripe_calls',
  key: 'id',
  open: `job.status = 'pending'`,
  returning: 'job.*',
  deadLetter: (id, attempts, _reason, error) => giveUpCall(id, attempts, error),
};
