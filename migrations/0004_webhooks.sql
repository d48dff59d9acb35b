-- The inbox: every verified Stripe event, written before the webhook is acknowledged, so nothing Stripe was
-- told "received" can be lost. The event id is the key: a redelivery, a reconciliation run or a second
-- instance inserting the same event finds the row already there (insert … on conflict do nothing).
-- Rows are never deleted by the service: they are the record of what Stripe said and what came of it.
create table stripe_events (
  id text primary key,
  type text not null,
  livemode boolean not null,
  -- Stripe's own creation time (unix seconds on the wire), for listing and for applying oldest first.
  stripe_created_at timestamptz not null,
  payload jsonb not null,
  -- pending: recorded, not yet applied · deferred: waits for an event it depends on · done: applied ·
  -- ignored: recorded and deliberately not applied (reason says why) · failed: retry limit reached (dead letter).
  status text not null default 'pending' check (status in ('pending', 'deferred', 'done', 'ignored', 'failed')),
  reason text,
  -- How the event reached us: a signed delivery, or the reconciliation job reading GET /v1/events.
  source text not null check (source in ('webhook', 'reconcile')),
  -- The order the event was resolved to, so that events deferred on an order can be woken when it changes.
  -- No foreign key: an ignored event may name an order this service never had.
  order_id text,
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null default now(),
  last_error text,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  check ((status in ('done', 'ignored', 'failed')) = (processed_at is not null))
);
-- The retry worker claims due work oldest first, reading only unsettled rows.
create index stripe_events_due_idx on stripe_events (next_attempt_at) where status in ('pending', 'deferred');
-- Waking the events deferred on one order once it is paid.
create index stripe_events_deferred_order_idx on stripe_events (order_id) where status = 'deferred';
-- `events list --status …`, newest first.
create index stripe_events_status_idx on stripe_events (status, received_at);

-- How each Checkout Session's payment ended, once known. A "completed, payment pending" event that arrives
-- after the delayed payment already failed must not put the order back to processing; this row says so.
-- Orders keep their payment records (restrict).
create table stripe_checkout_outcomes (
  session_id text primary key,
  order_id text not null references orders (id) on delete restrict,
  outcome text not null check (outcome in ('paid', 'failed')),
  event_id text not null,
  created_at timestamptz not null default now()
);

-- Refunds as Stripe reported them, one row per refund id: two refunds of the same amount are two rows, a
-- redelivered refund event finds its row. The order's amount_refunded counts those of its own PaymentIntent
-- that have not failed or been canceled; a refund of another PaymentIntent (a second payment) is kept here
-- and not counted. Orders keep their refunds (restrict).
create table stripe_refunds (
  id text primary key,
  order_id text not null references orders (id) on delete restrict,
  charge_id text,
  -- Null when Stripe did not say; such a refund counts for the order.
  payment_intent_id text,
  amount bigint not null check (amount >= 0),
  currency char(3) not null,
  status text not null,
  event_id text not null,
  updated_at timestamptz not null default now()
);
create index stripe_refunds_order_idx on stripe_refunds (order_id);

-- Each charge's running refunded total (charge.refunded), the largest told: these arrive in any order, and a
-- refund known to us only through its charge still counts. Refunds known by id that failed are taken off it.
-- Orders keep their charges (restrict).
create table stripe_charges (
  id text primary key,
  order_id text not null references orders (id) on delete restrict,
  payment_intent_id text,
  amount_refunded bigint not null check (amount_refunded >= 0),
  event_id text not null,
  updated_at timestamptz not null default now()
);
create index stripe_charges_order_idx on stripe_charges (order_id);

-- Disputes, one row per dispute id. Status only moves open → won | lost, whatever order the events come in;
-- the order's dispute_status follows its newest dispute. Orders keep their disputes (restrict).
create table stripe_disputes (
  id text primary key,
  order_id text not null references orders (id) on delete restrict,
  charge_id text,
  amount bigint not null check (amount >= 0),
  currency char(3) not null,
  status text not null check (status in ('open', 'won', 'lost')),
  -- Stripe's creation time of the dispute: "newest" when an order has more than one.
  stripe_created_at timestamptz not null,
  event_id text not null,
  updated_at timestamptz not null default now()
);
create index stripe_disputes_order_idx on stripe_disputes (order_id);
