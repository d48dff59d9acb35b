import pg from 'pg';
import type { Db, Queryable, Rows, Sql } from '../ports/db.js';
import { INT8_OID, parseInt8 } from '../ports/db.js';

export interface PostgresOptions {
  connectionString: string;
  /** Every connection's search_path: tests give each test its own schema this way. */
  schema?: string;
  /** 10 connections: enough for two cores' worth of requests plus the workers, small enough that several instances fit a default max_connections of 100. */
  max?: number;
}

const asSql = (sql: Sql | string, values?: readonly unknown[]): Sql =>
  typeof sql === 'string' ? { text: sql, values: values ?? [] } : sql;

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(sql: Sql | string, values?: readonly unknown[]): Promise<Rows<R>> {
      const q = asSql(sql, values);
      const res = await client.query(q.text, q.values as unknown[]);
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    },
    async exec(script: string) {
      await client.query(script);
    },
  };
}

export function fromPg(opts: PostgresOptions): Db {
  const pool = new pg.Pool({
    connectionString: opts.connectionString,
    max: opts.max ?? 10,
    // Fail fast when the server is gone so that requests answer 503 instead of hanging.
    connectionTimeoutMillis: 3_000,
    ...(opts.schema ? { options: `-c search_path=${opts.schema}` } : {}),
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID ? parseInt8 : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that kills the process.
  pool.on('error', () => {});
  const base = queryable(pool);
  return {
    kind: 'postgres',
    query: base.query,
    exec: base.exec,
    async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const result = await fn(queryable(client));
        await client.query('commit');
        return result;
      } catch (err) {
        await client.query('rollback').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}
