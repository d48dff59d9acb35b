-- The referral programme (DESIGN §6): affiliates and their terms, referral codes and clicks, one commission
-- per referred paid order with its terms frozen on it, the append-only ledger that moves its money, fraud
-- decisions and payouts. Money is bigint minor units in the commission's (the order's) currency.

create table affiliates (
  id text primary key,
  name text not null,
  email text not null,
  -- The email as the self-referral guard compares it (lower case, no +tag, Gmail without dots).
  email_key text not null,
  -- The current terms; a commission copies them when it is created, so later changes never touch it.
  terms jsonb not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

create index affiliates_email_key_idx on affiliates (email_key);

create table referral_codes (
  code text primary key,
  affiliate_id text not null references affiliates (id) on delete restrict,
  active boolean not null default true,
  created_at timestamptz not null default now()
);
-- Unique ignoring case: ALICE10 and alice10 are one code.
create unique index referral_codes_lower_idx on referral_codes (lower(code));
create index referral_codes_affiliate_idx on referral_codes (affiliate_id);

-- A visit through /r/:code. The IP is kept only as a keyed hash (HMAC with a secret salt).
create table referral_clicks (
  id bigint generated always as identity primary key,
  code text not null,
  affiliate_id text not null,
  at timestamptz not null default now(),
  ip_hash text,
  user_agent text,
  landing jsonb not null default '{}'
);
create index referral_clicks_affiliate_idx on referral_clicks (affiliate_id, at);

-- What the payment facts told of the affiliates' own purchases (their buyer email is the affiliate's), for
-- the guards that compare a referred buyer with the affiliate.
create table affiliate_purchases (
  order_id text primary key,
  affiliate_id text not null references affiliates (id) on delete restrict,
  customer_id text,
  card_fingerprint text,
  ip_hash text,
  at timestamptz not null default now()
);
create index affiliate_purchases_affiliate_idx on affiliate_purchases (affiliate_id);

create table commissions (
  id text primary key,
  order_id text not null unique,
  affiliate_id text not null references affiliates (id) on delete restrict,
  code text not null,
  currency text not null,
  base_amount bigint not null check (base_amount > 0),
  amount bigint not null check (amount >= 0),
  terms jsonb not null,
  status text not null
    check (status in ('pending', 'on_hold', 'approved', 'paid', 'reversed', 'rejected')),
  hold_until timestamptz not null,
  -- An open dispute blocks approval until it closes; a lost one reverses the commission for good.
  dispute_open boolean not null default false,
  dispute_lost boolean not null default false,
  -- The status a commission had when refunds netted it to 0, to return to should a refund be given back.
  reversed_from text,
  buyer_ip_hash text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index commissions_affiliate_idx on commissions (affiliate_id, currency, status);
-- The approval job's scan: pending commissions whose hold has passed.
create index commissions_due_idx on commissions (hold_until) where status = 'pending';
create index commissions_velocity_idx on commissions (code, created_at);
create index commissions_buyer_ip_idx on commissions (buyer_ip_hash, created_at);

-- Money moves only through these rows. accrual: +amount; reversal: −x for refunds before payout (+x when a
-- refund is given back); clawback: the same after payout; payout: what a payout settled of the commission.
-- Each is unique on its cause (the event, refund, dispute or payout), so a replay adds nothing.
create table commission_entries (
  id bigint generated always as identity primary key,
  commission_id text not null references commissions (id) on delete restrict,
  type text not null check (type in ('accrual', 'reversal', 'clawback', 'payout')),
  amount bigint not null,
  cause text not null,
  at timestamptz not null default now(),
  unique (commission_id, cause)
);

create function commission_entries_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'commission_entries is append-only: % refused', tg_op using errcode = '42501';
end $$;
create trigger commission_entries_append_only before update or delete on commission_entries
  for each row execute function commission_entries_append_only();

-- Each fraud guard that fired, with its mode and evidence; a held commission's review is recorded here too.
create table commission_flags (
  commission_id text not null references commissions (id) on delete restrict,
  rule text not null,
  mode text not null check (mode in ('shadow', 'enforce')),
  evidence jsonb not null,
  at timestamptz not null default now(),
  primary key (commission_id, rule)
);

create table payouts (
  id text primary key,
  affiliate_id text not null references affiliates (id) on delete restrict,
  currency text not null,
  amount bigint not null check (amount >= 0),
  commission_ids jsonb not null,
  created_at timestamptz not null default now()
);

-- The order knows who referred it and the commission it earned; the view and notifications show both.
alter table orders add column referral_affiliate_id text;
alter table orders add column referral_commission_id text;
