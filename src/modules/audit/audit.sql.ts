import type { Sql } from '../../ports/db.js';

/** An audit entry as stored. `seq` is a bigint read as a safe integer; `at` has millisecond precision. */
export interface EntryRow {
  stream: string;
  seq: number;
  at: Date;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export interface HeadRow {
  stream: string;
  last_seq: number;
  last_hash: string;
}

/** Where a (stream, seq)-ordered scan stands: the last entry it has read. */
export interface Cursor {
  stream: string;
  seq: number;
}

const ENTRY_COLUMNS = 'stream, seq, at, actor, action, entity_type, entity_id, data, prev_hash, hash';

/**
 * Locks the stream's head, creating it (at seq 0) for a new stream, and returns the last seq and hash with the
 * transaction's id and the time. The row lock is held until the caller's transaction ends: that is what
 * serialises appends to one stream. Nothing changes here (the update is a no-op that takes the lock), so a
 * caller that is not in a transaction commits nothing worse than an empty head. `at` is read after the lock
 * is granted, from the database's one clock, truncated to the millisecond an ISO string can hold.
 */
export const lockHead = (stream: string, genesisHash: string): Sql => ({
  text: `insert into audit_streams (stream, last_seq, last_hash) values ($1, 0, $2)
         on conflict (stream) do update set last_seq = audit_streams.last_seq
         returning last_seq, last_hash, pg_current_xact_id()::text as xid,
                   date_trunc('milliseconds', clock_timestamp()) as at`,
  values: [stream, genesisHash],
});

/**
 * Moves the head onto the new entry and writes the entry, in one statement, only if the head is still where
 * `lockHead` found it in the same transaction: on a connection without a transaction the two statements are
 * two transactions, and then nothing is written (no row), rather than a fork.
 */
export const insertEntry = (e: {
  stream: string;
  seq: number;
  at: string;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  /** The canonical JSON text that was hashed. */
  dataJson: string;
  prev_hash: string;
  hash: string;
  xid: string;
}): Sql => ({
  text: `with head as (
           update audit_streams set last_seq = $2::bigint, last_hash = $10::text
            where stream = $1::text and last_seq = $2::bigint - 1 and last_hash = $9::text
              and pg_current_xact_id_if_assigned() = $11::xid8
           returning stream
         )
         insert into audit_entries (${ENTRY_COLUMNS})
         select $1::text, $2::bigint, $3::timestamptz, $4::text, $5::text, $6::text, $7::text, $8::jsonb,
                $9::text, $10::text
           from head`,
  values: [
    e.stream,
    e.seq,
    e.at,
    e.actor,
    e.action,
    e.entity_type,
    e.entity_id,
    e.dataJson,
    e.prev_hash,
    e.hash,
    e.xid,
  ],
});

/**
 * Up to `limit` entries after `after` in (stream, seq) order, optionally of one stream or one entity. The
 * row comparison `(stream, seq) > (…)` walks the primary key (or the entity index), so every page costs the
 * same however deep the scan is.
 */
export const entriesAfter = (
  after: Cursor | null,
  limit: number,
  filter: { stream?: string; entity_type?: string; entity_id?: string } = {},
): Sql => {
  const values: unknown[] = [];
  const where: string[] = [];
  const param = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  if (after) where.push(`(stream, seq) > (${param(after.stream)}, ${param(after.seq)}::bigint)`);
  if (filter.stream !== undefined) where.push(`stream = ${param(filter.stream)}`);
  if (filter.entity_type !== undefined) where.push(`entity_type = ${param(filter.entity_type)}`);
  if (filter.entity_id !== undefined) where.push(`entity_id = ${param(filter.entity_id)}`);
  return {
    text: `select ${ENTRY_COLUMNS} from audit_entries
            ${where.length ? `where ${where.join(' and ')}` : ''}
            order by stream, seq limit ${param(limit)}`,
    values,
  };
};

export const headsOf = (streams: readonly string[]): Sql => ({
  text: 'select stream, last_seq, last_hash from audit_streams where stream = any($1::text[])',
  values: [streams],
});

/**
 * Heads that count entries none of which is there, first in stream order: only possible when every entry of
 * a stream was deleted with the triggers disabled (the foreign key's restrict is a trigger too).
 */
export const firstHeadWithoutEntries = (): Sql => ({
  text: `select stream, last_seq, last_hash from audit_streams h
          where last_seq > 0 and not exists (select 1 from audit_entries e where e.stream = h.stream)
          order by stream limit 1`,
});
