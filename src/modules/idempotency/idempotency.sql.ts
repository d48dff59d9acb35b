import type { Sql } from '../../ports/db.js';

export interface IdempotencyRow {
  id: string;
  fingerprint: string;
  status: 'in_flight' | 'done';
  response_status: number | null;
  response_type: string | null;
  response_body: string | null;
  /** Computed by the database, so every instance judges leases and expiry by one clock. */
  expired: boolean;
  locked: boolean;
}

const RETURNING = `id, fingerprint, status, response_status, response_type, response_body,
  expires_at <= now() as expired, coalesce(locked_until > now(), false) as locked`;

/** Claims a key nobody holds; returns no row when the key already exists. */
export const insertKey = (k: {
  id: string;
  apiKeyId: string;
  key: string;
  fingerprint: string;
  owner: string;
  leaseMs: number;
  ttlMs: number;
}): Sql => ({
  text: `insert into idempotency_keys (id, api_key_id, key, fingerprint, status, owner, locked_until, expires_at)
         values ($1, $2, $3, $4, 'in_flight', $5, now() + $6 * interval '1 millisecond',
                 now() + $7 * interval '1 millisecond')
         on conflict (api_key_id, key) do nothing
         returning ${RETURNING}`,
  values: [k.id, k.apiKeyId, k.key, k.fingerprint, k.owner, k.leaseMs, k.ttlMs],
});

export const selectKey = (apiKeyId: string, key: string): Sql => ({
  text: `select ${RETURNING} from idempotency_keys where api_key_id = $1 and key = $2`,
  values: [apiKeyId, key],
});

/** A key past its 24 hours is as good as new: it starts over under a new id and fingerprint. */
export const renewExpiredKey = (k: {
  oldId: string;
  id: string;
  fingerprint: string;
  owner: string;
  leaseMs: number;
  ttlMs: number;
}): Sql => ({
  text: `update idempotency_keys
            set id = $2, fingerprint = $3, status = 'in_flight', owner = $4,
                locked_until = now() + $5 * interval '1 millisecond', response_status = null,
                response_type = null, response_body = null, created_at = now(),
                expires_at = now() + $6 * interval '1 millisecond'
          where id = $1 and expires_at <= now()
          returning ${RETURNING}`,
  values: [k.oldId, k.id, k.fingerprint, k.owner, k.leaseMs, k.ttlMs],
});

/** Takes over an in-flight key whose holder let go (failed) or whose lease ran out (died). */
export const takeOverKey = (id: string, owner: string, leaseMs: number): Sql => ({
  text: `update idempotency_keys set owner = $2, locked_until = now() + $3 * interval '1 millisecond'
          where id = $1 and status = 'in_flight' and (locked_until is null or locked_until <= now())
          returning ${RETURNING}`,
  values: [id, owner, leaseMs],
});

export const completeKey = (r: {
  id: string;
  owner: string;
  status: number;
  type: string;
  body: string;
}): Sql => ({
  text: `update idempotency_keys
            set status = 'done', owner = null, locked_until = null,
                response_status = $3, response_type = $4, response_body = $5
          where id = $1 and owner = $2`,
  values: [r.id, r.owner, r.status, r.type, r.body],
});

/** The request failed in a way a retry may fix: keep the fingerprint, let the next try take over at once. */
export const releaseKey = (id: string, owner: string): Sql => ({
  text: `update idempotency_keys set owner = null, locked_until = null where id = $1 and owner = $2`,
  values: [id, owner],
});

/** The request was refused before it did anything: the key is free for a corrected request. */
export const forgetKey = (id: string, owner: string): Sql => ({
  text: `delete from idempotency_keys where id = $1 and owner = $2`,
  values: [id, owner],
});

export const deleteExpiredKeys = (limit: number): Sql => ({
  text: `delete from idempotency_keys
          where id in (select id from idempotency_keys where expires_at <= now() order by expires_at limit $1)`,
  values: [limit],
});
