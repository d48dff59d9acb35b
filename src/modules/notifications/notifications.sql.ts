import type { Sql } from '../../ports/db.js';

/** One outbox row as the relay claims it. */
export interface ClaimedMessage {
  id: string;
  order_id: string;
  seq: number;
  payload: Record<string, unknown>;
  /** Attempts started so far, this one included: the fencing token for recording its result. */
  attempts: number;
}

/**
 * Claims up to `limit` due messages, at most one per order: the order's lowest undelivered seq, and only once
 * it is due. A later message is never claimable while an earlier one of its order is undelivered, whether
 * that one is waiting for a retry or being sent right now, so an order's messages go out one at a time in
 * seq order; other orders are unaffected. The claim takes a lease (`next_attempt_at` moves past the request
 * timeout) and commits before anything is sent, so no transaction or connection is held open across HTTP.
 *
 * Two relays claiming at once: `skip locked` makes the second pass over rows the first has locked; a row the
 * first has already leased and committed fails the re-check of `next_attempt_at <= now()`. A relay that dies
 * mid-send leaves its lease to run out, after which the message is sent again (at least once).
 * `seq` of an order commits in increasing order (changes hold the order's row lock), so any snapshot that
 * shows seq N+1 also shows seq N.
 */
export const claimDue = (limit: number, leaseSeconds: number): Sql => ({
  text: `with heads as (
           select m.id
             from outbox m
            where m.delivered_at is null
              and m.next_attempt_at <= now()
              and not exists (select 1
                                from outbox earlier
                               where earlier.order_id = m.order_id
                                 and earlier.seq < m.seq
                                 and earlier.delivered_at is null)
            order by m.next_attempt_at
            limit $1::integer
              for update skip locked
         )
         update outbox m
            set attempts = m.attempts + 1,
                next_attempt_at = now() + make_interval(secs => $2::double precision)
           from heads
          where m.id = heads.id
      returning m.id, m.order_id, m.seq, m.payload, m.attempts`,
  values: [limit, leaseSeconds],
});

/**
 * Records a 2xx. Only the claim that sent it may record it (`attempts` fences out a relay whose lease ran
 * out and was reclaimed): the current claimant's own send decides when the next seq may go.
 */
export const markDelivered = (id: string, attempts: number): Sql => ({
  text: `update outbox set delivered_at = now()
          where id = $1 and attempts = $2::integer and delivered_at is null`,
  values: [id, attempts],
});

/** Records a failed attempt and when to try again. Fenced like `markDelivered`. */
export const markFailed = (id: string, attempts: number, error: string, retryInSeconds: number): Sql => ({
  text: `update outbox
            set last_error = $3,
                next_attempt_at = now() + make_interval(secs => $4::double precision)
          where id = $1 and attempts = $2::integer and delivered_at is null`,
  values: [id, attempts, error, retryInSeconds],
});

/** Undelivered messages, and the age of the oldest (0 when there is none): the outbox's backlog and lag. */
export const selectBacklog = (): Sql => ({
  text: `select count(*)::integer as pending,
                coalesce(extract(epoch from now() - min(created_at)), 0)::double precision as oldest_seconds
           from outbox
          where delivered_at is null`,
});
