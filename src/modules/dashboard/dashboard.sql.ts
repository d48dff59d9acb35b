import type { Sql } from '../../ports/db.js';

/** The dashboard's session store (`dashboard_sessions`): rows keyed by the hash of the cookie's session id. */

export const upsertSession = (idHash: string, data: unknown, expiresAt: Date): Sql => ({
  text: `insert into dashboard_sessions (id_hash, data, expires_at) values ($1, $2::jsonb, $3::timestamptz)
         on conflict (id_hash) do update set data = excluded.data, expires_at = excluded.expires_at`,
  values: [idHash, JSON.stringify(data), expiresAt.toISOString()],
});

export const selectSession = (idHash: string): Sql => ({
  text: 'select data from dashboard_sessions where id_hash = $1 and expires_at > now()',
  values: [idHash],
});

export const deleteSession = (idHash: string): Sql => ({
  text: 'delete from dashboard_sessions where id_hash = $1',
  values: [idHash],
});

/** Expired rows, a batch at a time: a sign-in sweeps a few, so the table never grows without bound. */
export const deleteExpiredSessions = (limit: number): Sql => ({
  text: `delete from dashboard_sessions where id_hash in (
           select id_hash from dashboard_sessions where expires_at <= now() limit $1)`,
  values: [limit],
});
