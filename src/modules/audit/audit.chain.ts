import canonicalize from 'canonicalize';
import { sha256Hex } from '../../shared/hash.js';
import { isStorable } from '../../shared/storable.js';

/**
 * The rules of one hash chain, pure: how an entry is hashed, which data may go into it, and how a chain read
 * in (stream, seq) order is checked, one entry at a time, in constant memory.
 */

/** The `prev_hash` of every stream's first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** The system stream, for what belongs to no affiliate (settings, jobs). */
export const SYSTEM_STREAM = 'system';

/** Affiliate ids as the referral programme makes them (`aff_…`), with room for ids imported from elsewhere. */
const AFFILIATE_STREAM = /^affiliate:[A-Za-z0-9_-]{1,64}$/;

/** The stream of one affiliate's chain. */
export const affiliateStream = (affiliateId: string) => `affiliate:${affiliateId}`;

export const isStream = (stream: string) => stream === SYSTEM_STREAM || AFFILIATE_STREAM.test(stream);

/** Every field the hash covers, as hashed: `at` an ISO 8601 string with milliseconds. */
export interface HashedEntry {
  stream: string;
  seq: number;
  at: string;
  actor: string;
  action: string;
  entity_type: string;
  entity_id: string;
  data: Record<string, unknown>;
  prev_hash: string;
}

/** RFC 8785 canonical JSON of an entry: what is hashed, whatever order jsonb gives its keys back in. */
export function canonicalEntry(e: HashedEntry): string {
  const json = canonicalize({
    stream: e.stream,
    seq: e.seq,
    at: e.at,
    actor: e.actor,
    action: e.action,
    entity_type: e.entity_type,
    entity_id: e.entity_id,
    data: e.data,
    prev_hash: e.prev_hash,
  });
  if (json === undefined) throw new TypeError('an audit entry has no JSON form');
  return json;
}

/** `hash = SHA-256(prev_hash ‖ canonical JSON)`: the hex prev_hash and the JSON text, as UTF-8, in lower-case hex. */
export const entryHash = (e: HashedEntry) => sha256Hex(e.prev_hash + canonicalEntry(e));

/**
 * Refuses data whose JSON would not read back from jsonb as it was hashed: numbers other than safe integers
 * (money is integer minor units; jsonb keeps numerics exactly, JavaScript would not), strings PostgreSQL
 * cannot store, and anything that is not plain JSON (dates, class instances, bigint, undefined in an array). A caller's
 * mistake, found at the append rather than by the next `audit verify`.
 */
export function assertAuditable(value: unknown, path = 'data'): void {
  if (value === null || typeof value === 'boolean') return;
  if (typeof value === 'string') {
    if (!isStorable(value)) throw new TypeError(`${path}: a string PostgreSQL cannot store`);
    return;
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value))
      throw new TypeError(`${path}: ${value} is not a safe integer (amounts are integer minor units)`);
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      assertAuditable(v, `${path}[${i}]`);
    });
    return;
  }
  if (typeof value === 'object') {
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw new TypeError(`${path}: not a plain JSON object`);
    for (const [k, v] of Object.entries(value)) {
      if (!isStorable(k)) throw new TypeError(`${path}: a key PostgreSQL cannot store`);
      // An undefined property is an absent one, to canonical JSON as to JSON.stringify: nothing to refuse.
      if (v !== undefined) assertAuditable(v, `${path}.${k}`);
    }
    return;
  }
  throw new TypeError(`${path}: a ${typeof value} has no JSON form`);
}

/** Why an entry (or a stream's end) does not hold together, in the order they are checked. */
export const BREAKS = {
  /** Its seq is not the one after the previous entry's (the stream's first is 1): entries are missing. */
  seq_gap: 'entries are missing before it',
  /** It claims the same predecessor as the entry before it: two entries follow one. */
  fork: 'it claims the same previous entry as the entry before it',
  /** Its prev_hash is not the previous entry's hash (or, first in its stream, the genesis hash). */
  broken_link: "its prev_hash is not the previous entry's hash",
  /** What it says does not hash to its hash: it was changed after it was written. */
  hash_mismatch: 'its content does not match its hash',
  /** The stream's head counts entries past this one that are not there: the chain's end was cut off. */
  missing_entries: "the stream's head counts entries that are not there",
  /** The stream's head is missing, or names another last entry than the chain's. */
  head_mismatch: "the stream's head does not match its last entry",
} as const;

export type BreakReason = keyof typeof BREAKS;

/** The first entry that breaks a chain, as `audit verify` names it. */
export interface FirstBad {
  stream: string;
  seq: number;
  reason: BreakReason;
  message: string;
}

const broken = (stream: string, seq: number, reason: BreakReason): FirstBad => ({
  stream,
  seq,
  reason,
  message: BREAKS[reason],
});

/** What a chain check carries from one entry to the next: the last entry's seq and hashes. */
export interface Link {
  seq: number;
  hash: string;
  prev_hash: string;
}

/** The link a stream's first entry must follow. */
export const GENESIS_LINK: Link = { seq: 0, hash: GENESIS_HASH, prev_hash: '' };

/** Checks one entry against the one before it in its stream; null when it holds. */
export function checkEntry(before: Link, e: HashedEntry & { hash: string }): FirstBad | null {
  if (e.seq !== before.seq + 1) return broken(e.stream, e.seq, 'seq_gap');
  if (e.prev_hash !== before.hash) {
    return broken(e.stream, e.seq, e.prev_hash === before.prev_hash ? 'fork' : 'broken_link');
  }
  if (entryHash(e) !== e.hash) return broken(e.stream, e.seq, 'hash_mismatch');
  return null;
}

/** Checks a stream's last entry against its head row; null when they agree. */
export function checkHead(
  stream: string,
  last: Link,
  head: { last_seq: number; last_hash: string } | undefined,
): FirstBad | null {
  if (!head) return broken(stream, last.seq, 'head_mismatch');
  if (head.last_seq > last.seq) return broken(stream, last.seq + 1, 'missing_entries');
  if (head.last_seq < last.seq || head.last_hash !== last.hash)
    return broken(stream, last.seq, 'head_mismatch');
  return null;
}

/** One line for people (the CLI's error): which entry, and why. */
export const describeBreak = (bad: FirstBad) =>
  `audit log broken at ${bad.stream} seq ${bad.seq}: ${bad.reason} (${bad.message})`;
