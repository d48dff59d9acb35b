import { createHash } from 'node:crypto';
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

/**
 * Every query runs as a named prepared statement, so that each connection parses and plans a statement once
 * rather than on every call: that was a third of PostgreSQL's work per webhook event (docs/performance.md).
 * The name is a hash of the text, so one text has one name everywhere. Statements whose text is built from
 * parts (an update of some columns) have a bounded number of forms; past PREPARED_NAMES distinct texts, the
 * rest run unnamed, so that nothing can make a connection hold an unbounded number of statements.
 */
const PREPARED_NAMES = 1000;
const names = new Map<string, string>();

function statementName(text: string): string | undefined {
  let name = names.get(text);
  if (name === undefined && names.size < PREPARED_NAMES) {
    name = `q_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/**
 * A prepared `select *` or `returning *` fails with this once a migration has added a column to its table
 * under a running instance. The connection is dropped (the pool does so for any failed pool query, `tx` for
 * this error), and the next one prepares afresh. A single query is run again, at most once per connection of
 * the pool, so `attempts` = pool size + 1 always ends on a fresh one; a transaction fails as any failed
 * transaction does (its caller retries it: an event's try, a client's request), since only the caller knows
 * whether its work may run twice.
 */
const isStalePlan = (err: unknown) =>
  (err as { code?: string }).code === '0A000' &&
  /cached plan must not change result type/.test((err as Error).message);

async function againIfStalePlan<T>(attempts: number, run: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await run();
    } catch (err) {
      if (i >= attempts || !isStalePlan(err)) throw err;
    }
  }
}

function queryable(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async query<R>(sql: Sql | string, values?: readonly unknown[]): Promise<Rows<R>> {
      const q = asSql(sql, values);
      const name = statementName(q.text);
      const res = await client.query({
        text: q.text,
        values: q.values as unknown[],
        ...(name ? { name } : {}),
      });
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
  const attempts = (opts.max ?? 10) + 1;
  const tx = async <T>(fn: (q: Queryable) => Promise<T>): Promise<T> => {
    const client = await pool.connect();
    let stale = false;
    try {
      await client.query('begin');
      const result = await fn(queryable(client));
      await client.query('commit');
      return result;
    } catch (err) {
      stale = isStalePlan(err);
      await client.query('rollback').catch(() => {});
      throw err;
    } finally {
      client.release(stale);
    }
  };
  return {
    kind: 'postgres',
    query: (sql, values) => againIfStalePlan(attempts, () => base.query(sql, values)),
    exec: base.exec,
    tx,
    close: () => pool.end(),
  };
}
