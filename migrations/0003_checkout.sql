-- Idempotency-Key on our own API (IETF draft semantics, CONTRACT §3): one row per key an API key has sent,
-- holding the request's fingerprint and, once it finished, the response to replay. Rows live 24 hours.
-- A deleted API key takes its keys with it (cascade): nobody is left who could replay them.
create table idempotency_keys (
  -- Our own id for this use of the key; Stripe attempts started by the request point at it, so a retry
  -- resumes them, while a key reused after expiry starts afresh.
  id text primary key,
  api_key_id text not null references api_keys (id) on delete cascade,
  key text not null check (length(key) between 1 and 255),
  -- sha256 of method, path and canonical JSON body: "same request" means same fingerprint.
  fingerprint text not null,
  status text not null check (status in ('in_flight', 'done')),
  -- The request holding an in-flight key. Past locked_until its process is presumed dead and a retry may
  -- take the key over; owner makes sure only the current holder stores the response.
  owner text,
  locked_until timestamptz,
  response_status integer,
  response_type text,
  response_body text,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null,
  unique (api_key_id, key),
  check (status = 'in_flight' or response_status is not null)
);
-- The sweeper deletes expired rows oldest first.
create index idempotency_keys_expires_idx on idempotency_keys (expires_at);

-- Calls to Stripe that create money-moving objects, in atomic phases: the row is written before the call
-- (phase 1), the call carries an idempotency key derived from the row's id (phase 2), and the answer is stored
-- (phase 3). A row left 'pending' by a crash is finished by the completer, which repeats the call with the
-- same key so Stripe answers with the object it already made. Orders keep their attempts (restrict).
create table stripe_attempts (
  id text primary key,
  kind text not null check (kind in ('checkout_session', 'refund')),
  order_id text not null references orders (id) on delete restrict,
  -- The idempotency_keys row of the API request that started it. No foreign key: keys expire after a day,
  -- attempts are kept as the record of what was asked of Stripe.
  request_id text,
  params jsonb not null,
  -- Refunds: the amount asked for, counted against the order's balance while Stripe has not settled it.
  amount bigint check (amount >= 0),
  status text not null check (status in ('pending', 'done', 'failed')),
  stripe_object_id text,
  response jsonb,
  error jsonb,
  tries integer not null default 0,
  -- When the completer may next pick the row up; the first time only after a live request had ample time.
  next_attempt_at timestamptz not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (kind, request_id),
  check ((status = 'done') = (stripe_object_id is not null))
);
create index stripe_attempts_pending_idx on stripe_attempts (next_attempt_at) where status = 'pending';
create index stripe_attempts_order_idx on stripe_attempts (order_id, kind);

-- Every Checkout Session made for an order, with what it charges. A new session for an unpaid order expires the
-- ones before it: superseded_at marks them in the transaction that stores the new session, so an expiry event
-- for an old session never expires the order, and a session whose expiry did not go through stays unmarked
-- for the next checkout to expire. A payment is checked against its own session's amount and currency.
create table checkout_sessions (
  id text primary key,
  order_id text not null references orders (id) on delete restrict,
  attempt_id text not null unique references stripe_attempts (id) on delete restrict,
  url text,
  amount_total bigint not null check (amount_total >= 0),
  currency char(3) not null,
  expires_at timestamptz not null,
  superseded_at timestamptz,
  created_at timestamptz not null default now()
);
create index checkout_sessions_order_idx on checkout_sessions (order_id) where superseded_at is null;
