import type { QueueTable } from '../../jobs/index.js';
import type { Sql } from '../../ports/db.js';

/** One outbox row as the relay claims it. */
export interface ClaimedMessage {
  id: string;
  order_id: string;
  seq: number;
  payload: Record<string, unknown>;
  /** The try this claim holds; a result is recorded only while the row is still on this try. */
  attempts: number;
}

/** A message for the Orders service, written in the transaction of the order change it announces. */
export const insertMessage = (m: {
  id: string;
  orderId: string;
  seq: number;
  type: string;
  payload: unknown;
}): Sql => ({
  text: `insert into outbox (id, order_id, seq, type, payload) values ($1, $2, $3, $4, $5::jsonb)`,
  values: [m.id, m.orderId, m.seq, m.type, JSON.stringify(m.payload)],
});

/**
 * The outbox as a queue (src/jobs). A row is claimable only as its order's lowest undelivered seq, so an
 * order's messages go out one at a time in seq order whatever their due times, whether the earlier one is
 * waiting for a retry or being sent right now; other orders are unaffected. `seq` of an order commits in
 * increasing order (changes hold the order's row lock), so any snapshot that shows seq N+1 also shows seq N.
 * Two relays claiming at once: `skip locked` makes the second pass over rows the first has locked, and a row
 * the first has already leased fails the second's `next_attempt_at <= now()`. Messages are never dead-lettered:
 * the order's later messages wait behind them, so dropping one would leave a gap the Orders service cannot fill.
 */
export const OUTBOX_QUEUE: QueueTable = {
  table: 'outbox',
  key: 'id',
  open: 'job.delivered_at is null',
  claimable: `not exists (select 1 from outbox earlier
                           where earlier.order_id = job.order_id and earlier.seq < job.seq
                             and earlier.delivered_at is null)`,
  returning: 'job.id, job.order_id, job.seq, job.payload, job.attempts',
};

/** Records a 2xx, only while the row is on the try that sent it (a relay whose lease ran out is fenced out). */
export const markDelivered = (id: string, attempts: number): Sql => ({
  text: `update outbox set delivered_at = now()
          where id = $1 and attempts = $2::integer and delivered_at is null`,
  values: [id, attempts],
});

/** Undelivered messages, and the age of the oldest (0 when there is none): the outbox's backlog and lag. */
export const selectBacklog = (): Sql => ({
  text: `select count(*)::integer as pending,
                coalesce(extract(epoch from now() - min(created_at)), 0)::double precision as oldest_seconds
           from outbox
          where delivered_at is null`,
});
