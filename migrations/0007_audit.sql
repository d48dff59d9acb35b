-- The tamper-evident audit log (DESIGN §6): one hash chain per stream (`affiliate:<aff_id>`, `system`).
-- Entries are appended by the audit module inside the transaction of the change they record.

-- Each stream's head: its last sequence number and hash (0 and the genesis hash before its first entry). An
-- append takes this row's lock (insert … on conflict (stream) do update), so appends to one stream queue
-- behind each other until the appending transaction commits, while appends to other streams go on: no global
-- lock. Heads are never deleted and never move backwards (triggers below). Streams are ASCII names compared
-- byte by byte ("C"), so the (stream, seq) order of a scan is the same on every server whatever its locale.
create table audit_streams (
  stream text collate "C" primary key,
  last_seq bigint not null check (last_seq >= 0),
  last_hash text not null check (length(last_hash) = 64)
);

-- The entries. `hash = SHA-256(prev_hash ‖ RFC 8785 canonical JSON of the entry)`, genesis prev_hash is 64
-- zeros; the primary key refuses a second entry with the same sequence number, so a chain cannot fork by
-- seq. A head cannot be deleted while entries follow it (restrict): the chain would lose the end that says
-- how long it is.
create table audit_entries (
  stream text collate "C" not null references audit_streams (stream) on delete restrict,
  seq bigint not null check (seq >= 1),
  -- Milliseconds, as hashed: the ISO string in the hash must read back the same from timestamptz.
  at timestamptz not null,
  actor text not null,
  action text not null,
  entity_type text not null,
  entity_id text not null,
  data jsonb not null check (jsonb_typeof(data) = 'object'),
  prev_hash text not null check (length(prev_hash) = 64),
  hash text not null check (length(hash) = 64),
  primary key (stream, seq)
);
-- `GET /v1/audit?entity_type=…&entity_id=…`, in the list's (stream, seq) order.
create index audit_entries_entity_idx on audit_entries (entity_type, entity_id, stream, seq);

-- Append-only. A trigger rather than a revoked grant, since it stops the table's owner and superusers too (the
-- service often runs as the owner); disabling it takes a deliberate ALTER TABLE or session_replication_role,
-- and what is changed then is what `audit verify` finds. SQLSTATE AU001 names this refusal alone.
create function audit_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'the audit log is append-only: % on % refused', tg_op, tg_table_name
    using errcode = 'AU001', hint = 'audit entries and stream heads are never changed back or removed';
end;
$$;

create trigger audit_entries_append_only before update or delete on audit_entries
  for each row execute function audit_refuse_change();
create trigger audit_entries_no_truncate before truncate on audit_entries
  for each statement execute function audit_refuse_change();
create trigger audit_streams_no_delete before delete on audit_streams
  for each row execute function audit_refuse_change();
create trigger audit_streams_no_truncate before truncate on audit_streams
  for each statement execute function audit_refuse_change();
-- A head only moves forward; the function runs only for an update that would move one back.
create trigger audit_streams_forward_only before update on audit_streams
  for each row when (new.last_seq < old.last_seq or new.stream <> old.stream)
  execute function audit_refuse_change();
