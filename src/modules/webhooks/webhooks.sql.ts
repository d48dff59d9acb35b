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
  status: InboxStatus;
  reason: string | null;
  source: 'webhook' | 'reconcile';
  order_id: string | null;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  received_at: Date;
  processed_at: Date | null;
}

/** Records an event unless it is already there; returns a row only when this call inserted it. */
export const insertEvent = (e: {
  id: string;
  type: string;
  livemode: boolean;
  created: number;
  payloadJson: string;
  source: 'webhook' | 'reconcile';
  firstAttemptDelayMs: number;
}): Sql => ({
  text: `insert into stripe_events (id, type, livemode, stripe_created_at, payload, source, next_attempt_at)
         values ($1, $2, $3, to_timestamp($4::double precision), $5::jsonb, $6,
                 now() + $7::integer * interval '1 millisecond')
         on conflict (id) do nothing
         returning id`,
  values: [e.id, e.type, e.livemode, e.created, e.payloadJson, e.source, e.firstAttemptDelayMs],
});

export const selectEvent = (id: string): Sql => ({
  text: `select *, next_attempt_at <= now() as due from stripe_events where id = $1`,
  values: [id],
});

/** The row lock that makes PostgreSQL the arbiter: whoever holds it decides, the others wait and find it settled. */
export const lockEvent = (id: string): Sql => ({
  text: 'select * from stripe_events where id = $1 for update',
  values: [id],
});

export const updateEvent = (u: {
  id: string;
  status: InboxStatus;
  reason: string | null;
  orderId: string | null;
  attempts: number;
  nextAttemptDelayMs: number;
  lastError: string | null;
}): Sql => ({
  text: `update stripe_events
            set status = $2, reason = $3, order_id = coalesce($4, order_id), attempts = $5,
                next_attempt_at = now() + $6::integer * interval '1 millisecond', last_error = $7,
                processed_at = case when $2 in ('done', 'ignored', 'failed') then now() end
          where id = $1`,
  values: [u.id, u.status, u.reason, u.orderId, u.attempts, u.nextAttemptDelayMs, u.lastError],
});

/**
 * Claims due events for one worker: `skip locked` lets several workers share the queue, and pushing
 * next_attempt_at out by the lease keeps the others off these rows while this one works on them. A worker
 * that dies simply lets the lease run out.
 */
export const claimDue = (limit: number, leaseMs: number): Sql => ({
  text: `update stripe_events set next_attempt_at = now() + $2::integer * interval '1 millisecond'
          where id in (select id from stripe_events
                        where status in ('pending', 'deferred') and next_attempt_at <= now()
                        order by next_attempt_at
                        limit $1
                        for update skip locked)
          returning id, type`,
  values: [limit, leaseMs],
});

/** Events deferred on an order that just moved: due now, oldest first. */
export const wakeDeferred = (orderId: string): Sql => ({
  text: `update stripe_events set next_attempt_at = now()
          where order_id = $1 and status = 'deferred'
          returning id, type, stripe_created_at`,
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

/** Reopens an event for `events replay`: anything but one already applied. */
export const reopenEvent = (id: string): Sql => ({
  text: `update stripe_events
            set status = 'pending', reason = null, attempts = 0, next_attempt_at = now(), processed_at = null,
                last_error = null
          where id = $1 and status <> 'done'
          returning id, type`,
  values: [id],
});

export const existingEventIds = (ids: string[]): Sql => ({
  text: 'select id from stripe_events where id = any($1::text[])',
  values: [ids],
});

export const countByStatus = (): Sql => ({
  text: 'select status, count(*)::integer as n from stripe_events group by status',
});

export const orderIdByPaymentIntent = (paymentIntentId: string): Sql => ({
  text: `select id from orders where payment_intent_id = $1 order by created_at desc limit 1`,
  values: [paymentIntentId],
});

export const selectCheckoutOutcome = (sessionId: string): Sql => ({
  text: 'select outcome from stripe_checkout_outcomes where session_id = $1',
  values: [sessionId],
});

export const insertCheckoutOutcome = (o: {
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
export const sessionsCharging = (orderId: string, amount: number | null, currency: string | null): Sql => ({
  text: `select s.id, o.outcome from checkout_sessions s
           left join stripe_checkout_outcomes o on o.session_id = s.id
          where s.order_id = $1 and s.amount_total = $2::bigint and s.currency = $3::text`,
  values: [orderId, amount, currency],
});

export const selectRefund = (id: string): Sql => ({
  text: 'select status from stripe_refunds where id = $1',
  values: [id],
});

export const insertRefund = (r: {
  id: string;
  orderId: string;
  chargeId: string | null;
  paymentIntentId: string | null;
  amount: number;
  currency: string;
  status: string;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_refunds (id, order_id, charge_id, payment_intent_id, amount, currency, status, event_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8)`,
  values: [r.id, r.orderId, r.chargeId, r.paymentIntentId, r.amount, r.currency, r.status, r.eventId],
});

export const updateRefundStatus = (id: string, status: string, eventId: string): Sql => ({
  text: 'update stripe_refunds set status = $2, event_id = $3, updated_at = now() where id = $1',
  values: [id, status, eventId],
});

/** Keeps the largest running refunded total a charge.refunded has told for the charge. */
export const upsertChargeRefunded = (c: {
  id: string;
  orderId: string;
  paymentIntentId: string | null;
  amountRefunded: number;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_charges (id, order_id, payment_intent_id, amount_refunded, event_id)
         values ($1, $2, $3, $4, $5)
         on conflict (id) do update
            set amount_refunded = excluded.amount_refunded, event_id = excluded.event_id, updated_at = now()
          where stripe_charges.amount_refunded < excluded.amount_refunded`,
  values: [c.id, c.orderId, c.paymentIntentId, c.amountRefunded, c.eventId],
});

/**
 * What is refunded of one PaymentIntent of the order (`includeUnknown`: and of refunds and charges Stripe named
 * no PaymentIntent for): the refunds known by id that have not failed or been canceled (Stripe counts pending
 * ones in a charge's amount_refunded too), or, when larger, the charges' running totals less the refunds known
 * to have failed. The second covers refunds told only through their charge; a running total told before a
 * refund failed includes it, hence the subtraction. Each input only moves one way (a refund's status by rank,
 * a charge's total up), so the answer does not depend on the order the events came in.
 */
export const refundedTotal = (
  orderId: string,
  paymentIntentId: string | null,
  includeUnknown: boolean,
): Sql => {
  const ofPayment = `($2::text is null or payment_intent_id = $2 or ($3::boolean and payment_intent_id is null))`;
  return {
    text: `select greatest(
                    (select coalesce(sum(amount), 0) from stripe_refunds
                      where order_id = $1 and ${ofPayment} and status not in ('failed', 'canceled')),
                    (select coalesce(sum(amount_refunded), 0) from stripe_charges where order_id = $1 and ${ofPayment})
                      - (select coalesce(sum(amount), 0) from stripe_refunds
                          where order_id = $1 and ${ofPayment} and status in ('failed', 'canceled')),
                    0)::bigint as total`,
    values: [orderId, paymentIntentId, includeUnknown],
  };
};

export const selectDispute = (id: string): Sql => ({
  text: 'select status from stripe_disputes where id = $1',
  values: [id],
});

export const insertDispute = (d: {
  id: string;
  orderId: string;
  chargeId: string | null;
  amount: number;
  currency: string;
  status: string;
  created: number;
  eventId: string;
}): Sql => ({
  text: `insert into stripe_disputes (id, order_id, charge_id, amount, currency, status, stripe_created_at, event_id)
         values ($1, $2, $3, $4, $5, $6, to_timestamp($7::double precision), $8)`,
  values: [d.id, d.orderId, d.chargeId, d.amount, d.currency, d.status, d.created, d.eventId],
});

export const updateDisputeStatus = (id: string, status: string, eventId: string): Sql => ({
  text: 'update stripe_disputes set status = $2, event_id = $3, updated_at = now() where id = $1',
  values: [id, status, eventId],
});

/** The order's newest dispute decides its dispute_status (ties broken by id, so the answer is stable). */
export const newestDisputeStatus = (orderId: string): Sql => ({
  text: `select status from stripe_disputes where order_id = $1 order by stripe_created_at desc, id desc limit 1`,
  values: [orderId],
});
