import type { Sql } from '../../ports/db.js';

export const insertKey = (k: {
  id: string;
  name: string;
  role: string;
  affiliateId: string | null;
  keyHash: string;
}): Sql => ({
  text: 'insert into api_keys (id, name, role, affiliate_id, key_hash) values ($1, $2, $3, $4, $5)',
  values: [k.id, k.name, k.role, k.affiliateId, k.keyHash],
});

/** Keys are looked up by their hash; only live (unrevoked) keys authenticate. */
export const selectLiveKey = (keyHash: string): Sql => ({
  text: 'select id, role, affiliate_id from api_keys where key_hash = $1 and revoked_at is null',
  values: [keyHash],
});

export const revokeKeysNamed = (name: string): Sql => ({
  text: 'update api_keys set revoked_at = now() where name = $1 and revoked_at is null',
  values: [name],
});

export const selectLiveKeyById = (id: string): Sql => ({
  text: 'select id, role, affiliate_id from api_keys where id = $1 and revoked_at is null',
  values: [id],
});
