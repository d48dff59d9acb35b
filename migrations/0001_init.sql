-- API keys: one role each. Only the SHA-256 of a key is kept, so a database leak does not leak keys.
create table api_keys (
  id text primary key,
  name text not null default '',
  role text not null check (role in ('admin', 'service', 'affiliate')),
  -- An affiliate key reads one affiliate's data; the other roles are bound to none.
  affiliate_id text,
  key_hash text not null unique,
  created_at timestamptz not null default now(),
  revoked_at timestamptz,
  check ((role = 'affiliate') = (affiliate_id is not null))
);
