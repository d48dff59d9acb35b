-- The core reshaped into modules that each own their tables (docs/architecture.md). Nothing is dropped; rows
-- keep their meaning except where a comment says otherwise. A table and a column are renamed, which the
-- previous version cannot work with: stop its instances before applying this (see the CHANGELOG).

-- "Attempts" named three things; a row here is one call to Stripe, so the table says so. Its `attempts` are
-- now the tries started, the request's own included (the same meaning as in stripe_events and outbox), so
-- rows already there count the request's try too. `last_error` keeps the newest retryable failure.
alter table stripe_attempts rename to stripe_calls;
alter table stripe_calls rename column tries to attempts;
update stripe_calls set attempts = attempts + 1;
alter table stripe_calls add column last_error text;
alter index stripe_attempts_pending_idx rename to stripe_calls_pending_idx;
alter index stripe_attempts_order_idx rename to stripe_calls_order_idx;
-- The generated names of its constraints follow, so that an error names the table it is about.
alter table stripe_calls rename constraint stripe_attempts_pkey to stripe_calls_pkey;
alter table stripe_calls rename constraint stripe_attempts_kind_check to stripe_calls_kind_check;
alter table stripe_calls rename constraint stripe_attempts_status_check to stripe_calls_status_check;
alter table stripe_calls rename constraint stripe_attempts_amount_check to stripe_calls_amount_check;
alter table stripe_calls rename constraint stripe_attempts_check to stripe_calls_check;
alter table stripe_calls rename constraint stripe_attempts_kind_request_id_key to stripe_calls_kind_request_id_key;
alter table stripe_calls rename constraint stripe_attempts_order_id_fkey to stripe_calls_order_id_fkey;

-- stripe_events.attempts takes the same meaning, tries started: the delivery that records an event counts as
-- its first try. Rows already there keep their count, which counted the failed and deferred tries: for a
-- row still waiting, the same number.

-- A session now carries the order fields its checkout set, so that a payment of it is checked against the
-- session alone: the payments module reads checkout_sessions through the checkout module, never joined to
-- another module's table.
alter table checkout_sessions rename column attempt_id to call_id;
alter table checkout_sessions rename constraint checkout_sessions_attempt_id_fkey to checkout_sessions_call_id_fkey;
alter table checkout_sessions rename constraint checkout_sessions_attempt_id_key to checkout_sessions_call_id_key;
alter table checkout_sessions add column order_fields jsonb;
update checkout_sessions s set order_fields = c.params -> 'order' from stripe_calls c where c.id = s.call_id;
update checkout_sessions set order_fields = '{}'::jsonb where order_fields is null;
alter table checkout_sessions alter column order_fields set not null;

-- What Stripe said of each successful charge that the payment facts carry (DESIGN §6 fraud guards): the Stripe
-- customer, the card's fingerprint, Radar's risk level and the billing email. Keyed by the charge; found by
-- its PaymentIntent. No order id: a charge.succeeded usually comes before the event that names the order, and
-- recording it needs none.
create table stripe_charge_details (
  charge_id text primary key,
  payment_intent_id text,
  customer_id text,
  card_fingerprint text,
  risk_level text,
  billing_email text,
  event_id text not null,
  recorded_at timestamptz not null default now()
);
create index stripe_charge_details_payment_intent_idx on stripe_charge_details (payment_intent_id);

-- Periodic jobs (reconciliation, and later commission approval) run once per period across every instance:
-- the instance whose update moves next_run_at forward runs the job, the others find it not due. started_at
-- fences the end of a run (a run that outlived its lease cannot overwrite the next one's result), and
-- last_success_started_at is where the next run's window begins.
create table periodic_jobs (
  name text primary key,
  next_run_at timestamptz not null default now(),
  started_at timestamptz,
  last_success_started_at timestamptz,
  last_error text,
  runs bigint not null default 0
);
