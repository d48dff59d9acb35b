import { PGlite } from '@electric-sql/pglite';
import type { Db, Queryable, Rows, Sql } from '../ports/db.js';
import { INT8_OID, parseInt8 } from '../ports/db.js';

interface PgliteQueryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[]; affectedRows?: number }>;
  exec(script: string): Promise<unknown>;
}

function queryable(conn: PgliteQueryable): Queryable {
  return {
    async query<R>(sql: Sql | string, values?: readonly unknown[]): Promise<Rows<R>> {
      const q = typeof sql === 'string' ? { text: sql, values: values ?? [] } : sql;
      const res = await conn.query<R>(q.text, (q.values ?? []) as unknown[]);
      return { rows: res.rows, rowCount: res.affectedRows ?? res.rows.length };
    },
    async exec(script: string) {
      await conn.exec(script);
    },
  };
}

/**
 * PGlite: PostgreSQL in-process, one connection. `dataDir` undefined keeps everything in memory (tests).
 * PGlite runs one transaction at a time and makes plain queries wait for it, which is the same isolation
 * PostgreSQL gives, only without concurrency.
 */
export async function fromPglite(dataDir?: string): Promise<Db> {
  const pglite = await PGlite.create(dataDir, { parsers: { [INT8_OID]: (v: string) => parseInt8(v) } });
  const base = queryable(pglite as unknown as PgliteQueryable);
  return {
    kind: 'pglite',
    query: base.query,
    exec: base.exec,
    // PGlite's transaction() rolls back when fn throws, so the single connection is never left aborted.
    tx: <T>(fn: (q: Queryable) => Promise<T>) =>
      pglite.transaction((t) => fn(queryable(t as unknown as PgliteQueryable))) as Promise<T>,
    close: () => pglite.close(),
  };
}
