-- Signed-in dashboard browsers. The cookie carries a random session id; only its SHA-256 is kept here, so
-- reading this table gives no one a session. A session names the API key it was opened with (the principal
-- is re-checked against api_keys on every request, so revoking the key ends it) and expires on its own.
-- Signing out deletes the row. Nothing references a session, and nothing it holds is needed afterwards.
create table if not exists dashboard_sessions (
  id_hash text primary key,
  data jsonb not null,
  expires_at timestamptz not null
);

create index if not exists dashboard_sessions_expires_idx on dashboard_sessions (expires_at);
