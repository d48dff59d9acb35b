import canonicalize from 'canonicalize';
import type { AuditEntry } from '../../ports/audit.js';
import type { Queryable } from '../../ports/db.js';
import { isStorable } from '../../shared/storable.js';
import { assertAuditable, entryHash, GENESIS_HASH, type HashedEntry, isStream } from './audit.chain.js';
import * as sql from './audit.sql.js';

/** An entry as appended: everything hashed, and its hash. */
export type AppendedEntry = HashedEntry & { hash: string };

/** Long enough for any id or action name we make; short enough that an entry stays a small row. */
const MAX_NAME_LENGTH = 200;

function assertEntry(entry: AuditEntry): void {
  if (!isStream(entry.stream))
    throw new TypeError(`audit stream ${JSON.stringify(entry.stream)} is neither system nor affiliate:<id>`);
  for (const field of ['actor', 'action', 'entity_type', 'entity_id'] as const) {
    const value = entry[field];
    if (
      typeof value !== 'string' ||
      value.length === 0 ||
      value.length > MAX_NAME_LENGTH ||
      !isStorable(value)
    )
      throw new TypeError(`audit ${field} must be 1-${MAX_NAME_LENGTH} storable characters`);
  }
  if (entry.data === null || typeof entry.data !== 'object' || Array.isArray(entry.data))
    throw new TypeError('audit data must be a JSON object');
  assertAuditable(entry.data);
}

/**
 * Appends `entry` to its stream inside the caller's transaction `q`, so that it exists exactly when the change
 * it records does. Two statements: lock the stream's head row (appends to the same stream wait here until this
 * transaction ends; other streams do not), then write the entry and move the head onto it.
 *
 * Throws when `q` is not a transaction (on a bare pool the two statements would be two transactions): nothing
 * is written then. A transaction appending to several streams holds several head locks; take them in one
 * order (affiliate streams, then `system`), else two such transactions may deadlock and PostgreSQL fails one
 * of them with 40P01, which is retryable. Under REPEATABLE READ or SERIALIZABLE, an append to a stream another
 * transaction appended to since this one's snapshot fails with 40001: retry the whole transaction.
 */
export async function appendAudit(q: Queryable, entry: AuditEntry): Promise<AppendedEntry> {
  assertEntry(entry);
  const head = (
    await q.query<{ last_seq: number; last_hash: string; xid: string; at: Date }>(
      sql.lockHead(entry.stream, GENESIS_HASH),
    )
  ).rows[0]!;
  const hashed: HashedEntry = {
    stream: entry.stream,
    seq: head.last_seq + 1,
    at: new Date(head.at).toISOString(),
    actor: entry.actor,
    action: entry.action,
    entity_type: entry.entity_type,
    entity_id: entry.entity_id,
    data: entry.data,
    prev_hash: head.last_hash,
  };
  const hash = entryHash(hashed);
  const written = await q.query(
    sql.insertEntry({ ...hashed, dataJson: canonicalize(entry.data)!, hash, xid: head.xid }),
  );
  if (written.rowCount !== 1)
    throw new Error('an audit entry must be appended inside the transaction of the change it records');
  return { ...hashed, hash };
}
