import { createHash, randomUUID } from 'node:crypto';
import type { Queryable } from '../../ports/db.js';
import { newId } from '../../shared/ids.js';
import type { IdempotencyRow } from './idempotency.sql.js';
import * as sql from './idempotency.sql.js';

/** CONTRACT §3: keys are kept 24 hours, then a client may use the same key for a new request. */
export const KEY_TTL_MS = 24 * 60 * 60 * 1000;
/**
 * How long a request may hold its key before another may take it over, presuming it died. Longer than the
 * slowest live request: a Stripe call may take 3 tries × 20 s (SDK timeout and retries) plus database work.
 */
export const KEY_LEASE_MS = 2 * 60 * 1000;
/** Stripe's limit for its own Idempotency-Key, so a client can send us the key it would send Stripe. */
const MAX_KEY_LENGTH = 255;
/** One takeover race lost is normal; losing three in a row means another holder is active. */
const MAX_CLAIM_ROUNDS = 3;

/** A request that holds its key: the row id (for Stripe attempts to point at) and our ownership token. */
export interface HeldKey {
  id: string;
  owner: string;
  /** The row was created by this request (not taken over), so refusing the request may delete it. */
  fresh: boolean;
}

export type Claim =
  | { kind: 'held'; key: HeldKey }
  | { kind: 'replay'; status: number; type: string; body: string }
  | { kind: 'reused' }
  | { kind: 'in_use' };

/**
 * The header's value: a bare token as Stripe takes it, or an sf-string (`"…"`) as the IETF draft writes it.
 * Returns null when it is not a usable key.
 */
export function parseIdempotencyKey(header: string): string | null {
  const quoted = /^"(.*)"$/.exec(header.trim());
  const key = quoted ? quoted[1]!.replace(/\\(["\\])/g, '$1') : header.trim();
  if (key.length === 0 || key.length > MAX_KEY_LENGTH || !/^[\x20-\x7e]+$/.test(key)) return null;
  return key;
}

/**
 * "Same request": same method, same path and query, same body bytes. Taken over the bytes as sent, never by
 * parsing and re-serialising, so its cost is one hash whatever the body holds; a client retrying sends the
 * same bytes again.
 */
export function requestFingerprint(method: string, url: string, body: Buffer | null): string {
  return createHash('sha256')
    .update(`${method} ${url}\n`)
    .update(body ?? Buffer.alloc(0))
    .digest('hex');
}

/** Claims `key` for a request, or says why it may not run: replay, reuse with another request, in use. */
export async function claimKey(
  q: Queryable,
  apiKeyId: string,
  key: string,
  fingerprint: string,
): Promise<Claim> {
  const owner = randomUUID();
  const lease = { owner, leaseMs: KEY_LEASE_MS, ttlMs: KEY_TTL_MS };
  for (let round = 0; round < MAX_CLAIM_ROUNDS; round++) {
    const id = newId('idk');
    const inserted = await q.query<IdempotencyRow>(
      sql.insertKey({ id, apiKeyId, key, fingerprint, ...lease }),
    );
    if (inserted.rows[0]) return { kind: 'held', key: { id, owner, fresh: true } };

    const row = (await q.query<IdempotencyRow>(sql.selectKey(apiKeyId, key))).rows[0];
    if (!row) continue;
    if (row.expired) {
      const renewed = await q.query<IdempotencyRow>(
        sql.renewExpiredKey({ oldId: row.id, id, fingerprint, ...lease }),
      );
      if (renewed.rows[0]) return { kind: 'held', key: { id, owner, fresh: true } };
      continue;
    }
    if (row.fingerprint !== fingerprint) return { kind: 'reused' };
    if (row.status === 'done') {
      return {
        kind: 'replay',
        status: row.response_status!,
        type: row.response_type!,
        body: row.response_body!,
      };
    }
    if (row.locked) return { kind: 'in_use' };
    const taken = await q.query<IdempotencyRow>(sql.takeOverKey(row.id, owner, KEY_LEASE_MS));
    if (taken.rows[0]) return { kind: 'held', key: { id: row.id, owner, fresh: false } };
  }
  return { kind: 'in_use' };
}

/** Stores the final response; only the current holder may (a presumed-dead holder may have come back). */
export async function completeKey(
  q: Queryable,
  held: HeldKey,
  response: { status: number; type: string; body: string },
): Promise<void> {
  await q.query(sql.completeKey({ id: held.id, owner: held.owner, ...response }));
}

/** The request failed in a way a retry may fix: the key keeps its fingerprint and is free at once. */
export async function releaseKey(q: Queryable, held: HeldKey): Promise<void> {
  await q.query(sql.releaseKey(held.id, held.owner));
}

/**
 * The request was refused before it did anything (400): a corrected request may use the key. A key taken over
 * from an earlier try is only released, since that try may have started Stripe calls under it.
 */
export async function forgetKey(q: Queryable, held: HeldKey): Promise<void> {
  await q.query(held.fresh ? sql.forgetKey(held.id, held.owner) : sql.releaseKey(held.id, held.owner));
}

/** Deletes up to `limit` keys past their 24 hours; returns how many. */
export async function sweepExpiredKeys(q: Queryable, limit: number): Promise<number> {
  return (await q.query(sql.deleteExpiredKeys(limit))).rowCount;
}
