-- Orders as this service knows them: the caller's id, what was asked for, and what Stripe has told us since.
-- Amounts are integers in the currency's minor unit.
create table orders (
  id text primary key,
  status text not null check (status in
    ('awaiting_payment', 'processing', 'paid', 'payment_failed', 'expired', 'partially_refunded', 'refunded')),
  dispute_status text check (dispute_status in ('open', 'won', 'lost')),
  currency char(3) not null check (currency = lower(currency)),
  amount_total bigint not null check (amount_total >= 0),
  amount_paid bigint not null default 0 check (amount_paid >= 0),
  amount_refunded bigint not null default 0 check (amount_refunded >= 0),
  customer_email text,
  line_items jsonb not null,
  checkout_session_id text,
  payment_intent_id text,
  referral_code text,
  client_ip text,
  -- Problems that stop the order from being marked paid, e.g. an amount that disagrees with Stripe's.
  flags jsonb not null default '[]'::jsonb,
  -- The seq of the newest order_events row; the next change takes seq + 1 under the row lock.
  seq integer not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index orders_payment_intent_idx on orders (payment_intent_id) where payment_intent_id is not null;
create index orders_checkout_session_idx on orders (checkout_session_id) where checkout_session_id is not null;

-- Every change of an order, as a diff. Append-only: the history is what the Orders service was told.
-- An order is never deleted while it has history (restrict).
create table order_events (
  order_id text not null references orders (id) on delete restrict,
  seq integer not null check (seq > 0),
  from_status text,
  to_status text not null,
  changes jsonb not null,
  cause text not null,
  at timestamptz not null default now(),
  primary key (order_id, seq)
);

-- Transactional outbox: written in the same transaction as the order_events row it announces, delivered to
-- ORDERS_WEBHOOK_URL by the relay at least once. (order_id, seq) is unique so one change is one message.
create table outbox (
  id text primary key,
  order_id text not null references orders (id) on delete restrict,
  seq integer not null,
  type text not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  delivered_at timestamptz,
  last_error text,
  unique (order_id, seq)
);
-- The relay's claim query reads only undelivered rows, oldest first.
create index outbox_pending_idx on outbox (next_attempt_at) where delivered_at is null;
