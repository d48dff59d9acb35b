import type { Queryable } from '../../ports/db.js';
import {
  checkEntry,
  checkHead,
  type FirstBad,
  GENESIS_LINK,
  type HashedEntry,
  type Link,
} from './audit.chain.js';
import * as sql from './audit.sql.js';

/** CONTRACT §3's answer of `GET /v1/audit/verify` (and `audit verify --json`). */
export type VerifyResult =
  | { ok: true; entries: number; streams: number }
  | { ok: false; first_bad: FirstBad };

/**
 * Entries per page. A page is a few hundred kilobytes whatever the log's size, and at this size the round
 * trip is a small part of a page's cost (hashing dominates), so larger pages would buy little.
 */
export const VERIFY_PAGE = 2_000;

/** The stream being checked: its name and its last entry so far. */
interface Open {
  stream: string;
  link: Link;
}

interface Scan {
  db: Queryable;
  page: number;
  entries: number;
  streams: number;
}

const asHashed = (row: sql.EntryRow): HashedEntry & { hash: string } => ({
  ...row,
  at: new Date(row.at).toISOString(),
});

const linkOf = (row: sql.EntryRow): Link => ({ seq: row.seq, hash: row.hash, prev_hash: row.prev_hash });

/**
 * The heads of the streams that end within `rows`: every stream but the last of a full page (it may go on in
 * the next), and the stream left open by the page before. Read after the page, so a head is never behind the
 * entries read of it (an entry and its head commit together).
 */
async function headsEndingIn(scan: Scan, rows: sql.EntryRow[], open: Open | null) {
  const ending = new Set(rows.map((r) => r.stream));
  if (rows.length === scan.page) ending.delete(rows[rows.length - 1]!.stream);
  if (open) ending.add(open.stream);
  const heads = (await scan.db.query<sql.HeadRow>(sql.headsOf([...ending]))).rows;
  return new Map(heads.map((h) => [h.stream, h]));
}

/**
 * Closes a stream: the entries appended to it since its pages were read (its head counts them) are checked
 * too, then its last entry against its head.
 */
async function closeStream(scan: Scan, open: Open, head: sql.HeadRow | undefined): Promise<FirstBad | null> {
  let link = open.link;
  while (head && link.seq < head.last_seq) {
    const after = { stream: open.stream, seq: link.seq };
    const rows = (
      await scan.db.query<sql.EntryRow>(sql.entriesAfter(after, scan.page, { stream: open.stream }))
    ).rows;
    const upToHead = rows.filter((r) => r.seq <= head.last_seq);
    for (const row of upToHead) {
      const bad = checkEntry(link, asHashed(row));
      if (bad) return bad;
      link = linkOf(row);
      scan.entries++;
    }
    if (upToHead.length < scan.page) break;
  }
  return checkHead(open.stream, link, head);
}

/** A head that counts entries none of which is there, reported where the scan passes its stream. */
const emptyHeadBreak = (head: sql.HeadRow): FirstBad => checkHead(head.stream, GENESIS_LINK, head)!;

/**
 * Recomputes every chain, page by page in (stream, seq) order with a keyset cursor, in memory bounded by one
 * page: `{ok: true, entries, streams}`, or the first entry that breaks a chain. No long transaction (PGlite
 * would make every request wait for it): appends may go on meanwhile; a stream's entries appended after its
 * pages were read are checked up to its head, and streams begun behind the cursor are left to the next run.
 */
export async function verifyAudit(db: Queryable, opts: { page?: number } = {}): Promise<VerifyResult> {
  const scan: Scan = { db, page: opts.page ?? VERIFY_PAGE, entries: 0, streams: 0 };
  const emptyHead = (await db.query<sql.HeadRow>(sql.firstHeadWithoutEntries())).rows[0];
  let open: Open | null = null;
  let cursor: sql.Cursor | null = null;
  for (;;) {
    const rows: sql.EntryRow[] = (await db.query<sql.EntryRow>(sql.entriesAfter(cursor, scan.page))).rows;
    const heads = await headsEndingIn(scan, rows, open);
    for (const row of rows) {
      if (open && open.stream !== row.stream) {
        const bad = await closeStream(scan, open, heads.get(open.stream));
        if (bad) return { ok: false, first_bad: bad };
        open = null;
      }
      if (!open) {
        // Streams are "C"-collated ASCII: JavaScript's comparison is the database's order.
        if (emptyHead && emptyHead.stream < row.stream)
          return { ok: false, first_bad: emptyHeadBreak(emptyHead) };
        open = { stream: row.stream, link: GENESIS_LINK };
        scan.streams++;
      }
      const bad = checkEntry(open.link, asHashed(row));
      if (bad) return { ok: false, first_bad: bad };
      open.link = linkOf(row);
      scan.entries++;
    }
    if (rows.length === scan.page) {
      cursor = { stream: open!.stream, seq: open!.link.seq };
      continue;
    }
    const bad = open ? await closeStream(scan, open, heads.get(open.stream)) : null;
    if (bad) return { ok: false, first_bad: bad };
    if (emptyHead) return { ok: false, first_bad: emptyHeadBreak(emptyHead) };
    return { ok: true, entries: scan.entries, streams: scan.streams };
  }
}
