import type { Queryable } from '../../ports/db.js';
import type { AppendedEntry } from './audit.append.js';
import { isStream } from './audit.chain.js';
import * as sql from './audit.sql.js';

/** An entry as `GET /v1/audit` lists it: what was hashed, its hash, and an id to page from. */
export type EntryView = AppendedEntry & { id: string };

export interface ListFilter {
  stream?: string;
  entity_type?: string;
  entity_id?: string;
}

/**
 * An entry's id, `<stream>/<seq>` (`affiliate:aff_…/12`): the list's `starting_after`. Entries have no id of
 * their own; their place in their chain is what names them, and it is also the list's order.
 */
export const entryId = (stream: string, seq: number) => `${stream}/${seq}`;

/** The cursor an entry id stands for, or null when it cannot be one. */
export function parseEntryId(id: string): sql.Cursor | null {
  const m = /^(.+)\/([1-9][0-9]{0,15})$/.exec(id);
  if (!m || !isStream(m[1]!)) return null;
  const seq = Number(m[2]);
  return Number.isSafeInteger(seq) ? { stream: m[1]!, seq } : null;
}

const toView = (row: sql.EntryRow): EntryView => ({
  id: entryId(row.stream, row.seq),
  stream: row.stream,
  seq: row.seq,
  at: new Date(row.at).toISOString(),
  actor: row.actor,
  action: row.action,
  entity_type: row.entity_type,
  entity_id: row.entity_id,
  data: row.data,
  prev_hash: row.prev_hash,
  hash: row.hash,
});

/** One page of entries in (stream, seq) order, CONTRACT §3's list shape. */
export async function listAudit(
  db: Queryable,
  filter: ListFilter,
  page: { limit: number; startingAfter?: sql.Cursor },
): Promise<{ data: EntryView[]; has_more: boolean }> {
  const { rows } = await db.query<sql.EntryRow>(
    sql.entriesAfter(page.startingAfter ?? null, page.limit + 1, filter),
  );
  return { data: rows.slice(0, page.limit).map(toView), has_more: rows.length > page.limit };
}
