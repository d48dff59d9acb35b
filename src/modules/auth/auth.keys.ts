import type { Queryable } from '../../ports/db.js';
import { sha256Hex } from '../../shared/hash.js';
import { newId, randomBase62 } from '../../shared/ids.js';
import {
  insertKey,
  revokeKeysNamed as revokeKeysNamedSql,
  selectLiveKey,
  selectLiveKeyById,
} from './auth.sql.js';

export const ROLES = ['admin', 'service', 'affiliate'] as const;
export type Role = (typeof ROLES)[number];

/** Who is calling: the key's id and role, and for an affiliate key the one affiliate it may read. */
export interface Principal {
  keyId: string;
  role: Role;
  affiliateId: string | null;
}

export interface CreatedKey {
  id: string;
  key: string;
  role: Role;
  affiliate_id: string | null;
}

/** 40 base62 characters ≈ 238 bits: far beyond guessing, so a plain SHA-256 (no slow hash) is enough. */
const KEY_LENGTH = 40;

/** Creates a key and returns it in clear text, the only time it is ever seen. */
export async function createKey(
  q: Queryable,
  input: { role: Role; affiliateId?: string | null; name?: string },
): Promise<CreatedKey> {
  const affiliateId = input.role === 'affiliate' ? (input.affiliateId ?? null) : null;
  if (input.role === 'affiliate' && !affiliateId) throw new Error('an affiliate key needs an affiliate id');
  const id = newId('key');
  const key = `psk_${randomBase62(KEY_LENGTH)}`;
  await q.query(
    insertKey({ id, name: input.name ?? '', role: input.role, affiliateId, keyHash: sha256Hex(key) }),
  );
  return { id, key, role: input.role, affiliate_id: affiliateId };
}

/** Revokes every live key with this label (the demo key of an earlier start, say). */
export async function revokeKeysNamed(q: Queryable, name: string): Promise<number> {
  return (await q.query(revokeKeysNamedSql(name))).rowCount;
}

export async function authenticate(q: Queryable, key: string): Promise<Principal | null> {
  const { rows } = await q.query<{ id: string; role: Role; affiliate_id: string | null }>(
    selectLiveKey(sha256Hex(key)),
  );
  const row = rows[0];
  return row ? { keyId: row.id, role: row.role, affiliateId: row.affiliate_id } : null;
}

/** The principal of a key by its id, while the key is live: a dashboard session re-checks its key this way. */
export async function principalOfKey(q: Queryable, keyId: string): Promise<Principal | null> {
  const { rows } = await q.query<{ id: string; role: Role; affiliate_id: string | null }>(
    selectLiveKeyById(keyId),
  );
  const row = rows[0];
  return row ? { keyId: row.id, role: row.role, affiliateId: row.affiliate_id } : null;
}
