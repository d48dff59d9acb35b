import type { QueueTable } from '../../jobs/index.js';
import type { Sql } from '../../ports/db.js';

export const INBOX_STATUSES = ['pending', 'deferred', 'done', 'ignored', 'failed'] as const;
export type InboxStatus = (typeof INBOX_STATUSES)[number];
/** Statuses nobody works on any more (until `events replay` reopens one). */
export const SETTLED: readonly InboxStatus[] = ['done', 'ignored', 'failed'];

export interface InboxRow {
  id: string;
  type: string;
  livemode: boolean;
  stripe_created_at: Date;
  payload: Record<string, unknown>;
  /** The text as Stripe sent it, kept only when `payload` had to replace a character to be storable. */
  raw_payload: string | null;
  status: InboxStatus;
  reason: string | null;
  source: 'webhook' | 'reconcile';
  order_id: string | null;
  /** Tries started: the delivery that recorded the event, then each retry. */
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  received_at: Date;
  processed_at: Date | null;
}

/**
 * Records an event unless it is already there; returns a row only when this call inserted it. The recording
 * delivery makes the first try itself, and holds it for `leaseMs` before a retry worker may take it.
 */
export const insertEvent = (e: {
  id: string;
  type: string;
  livemode: boolean;
  created: number;
  payloadJson: string;
  /** The text as sent, when `payloadJson` had to differ from it to be storable. */
  rawPayload: string | null;
  source: 'webhook' | 'reconcile';
  leaseMs: number;
}): Sql => ({
  text: `insert into stripe_events (id, type, livemode, stripe_created_at, payload, raw_payload, source, attempts,
                                    next_attempt_at)
         values ($1, $2, $3, to_timestamp($4::double precision), $5::jsonb, $6, $7, 1,
                 now() + $8::integer * interval '1 millisecond')
         on conflict (id) do nothing
         returning id`,
  values: [e.id, e.type, e.livemode, e.created, e.payloadJson, e.rawPayload, e.source, e.leaseMs],
});

export const selectEventStatus = (id: string): Sql => ({
  text: `select id, status, reason from stripe_events where id = $1`,
  values: [id],
});

/** The row lock that makes PostgreSQL the arbiter: whoever holds it decides, the others wait and find it settled. */
export const lockEvent = (id: string): Sql => ({
  text: 'select * from stripe_events where id = $1 for update',
  values: [id],
});

/** Settles the event (done, ignored, or failed for good): nobody works on it any more. */
export const settleEvent = (
  id: string,
  status: InboxStatus,
  reason: string | null,
  orderId: string | null,
): Sql => ({
  text: `update stripe_events
            set status = $2, reason = $3, order_id = coalesce($4, order_id), processed_at = now(),
                last_error = null
          where id = $1`,
  values: [id, status, reason, orderId],
});

/**
 * Settles the event as applied and, in the same statement, claims the next try of every event deferred on
 * the order it just moved (each claim counts as a try, as any other does), so that the try applies them at once after its commit. The
 * claims commit with the event or not at all. The settled row is kept out of the claim: in one statement
 * both parts see the row as it was, and it may itself have been deferred before.
 */
export const settleAndClaimDeferred = (
  id: string,
  reason: string | null,
  orderId: string,
  leaseMs: number,
): Sql => ({
  text: `with settled as (
           update stripe_events
              set status = 'done', reason = $2, order_id = $3, processed_at = now(), last_error = null
            where id = $1
         )
         update stripe_events
            set attempts = attempts + 1, next_attempt_at = now() + $4::integer * interval '1 millisecond'
          where order_id = $3 and status = 'deferred' and id <> $1
          returning id, type, attempts, stripe_created_at`,
  values: [id, reason, orderId, leaseMs],
});

/** The event waits for another one its order depends on, and is tried again after `delayMs` (or woken). */
export const deferEvent = (id: string, reason: string, orderId: string, delayMs: number): Sql => ({
  text: `update stripe_events
            set status = 'deferred', reason = $2, order_id = $3, last_error = null,
                next_attempt_at = now() + $4::integer * interval '1 millisecond'
          where id = $1`,
  values: [id, reason, orderId, delayMs],
});

/**
 * The inbox as a queue (src/jobs): events left pending (a crashed inline try) or deferred are retried by the
 * workers; at the limit an event becomes a dead letter (`failed`), shown by `events list --status failed`.
 */
export const INBOX_QUEUE: QueueTable = {
  table: 'stripe_events',
  key: 'id',
  open: `job.status in ('pending', 'deferred')`,
  returning: 'job.id, job.type, job.attempts',
  deadLetter: (id, attempts, reason, error) => ({
    text: `update stripe_events set status = 'failed', reason = $3, last_error = $4, processed_at = now()
            where id = $1 and attempts = $2::integer and status in ('pending', 'deferred')`,
    values: [id, attempts, reason, error],
  }),
};

/** Events deferred on an order that just moved: due now, for whoever comes first. */
export const wakeDeferred = (orderId: string): Sql => ({
  text: `update stripe_events set next_attempt_at = now() where order_id = $1 and status = 'deferred'`,
  values: [orderId],
});

export const listEvents = (status: InboxStatus | undefined, limit: number): Sql => ({
  text: `select id, type, status, reason, source, order_id, attempts, livemode, stripe_created_at, received_at,
                processed_at, next_attempt_at, last_error
           from stripe_events
          where ($1::text is null or status = $1)
          order by received_at desc, id desc
          limit $2`,
  values: [status ?? null, limit],
});

/**
 * Reopens an event for `events replay`: anything but one already applied. The replay makes its first try
 * itself, under a lease, as a delivery does.
 */
export const reopenEvent = (id: string, leaseMs: number): Sql => ({
  text: `update stripe_events
            set status = 'pending', reason = null, attempts = 1, processed_at = null, last_error = null,
                next_attempt_at = now() + $2::integer * interval '1 millisecond'
          where id = $1 and status <> 'done'
          returning id, type`,
  values: [id, leaseMs],
});

export const existingEventIds = (ids: string[]): Sql => ({
  text: 'select id from stripe_events where id = any($1::text[])',
  values: [ids],
});

export const countByStatus = (): Sql => ({
  text: 'select status, count(*)::integer as n from stripe_events group by status',
});
