import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromPg } from '../../src/adapters/postgres.js';
import type { Db } from '../../src/ports/db.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { postgresAvailable, TEST_DATABASE_URL } from '../helpers/services.js';

const postgres = await postgresAvailable();

/**
 * The PostgreSQL adapter prepares every statement once per connection. A migration that adds a column under
 * a running instance makes a prepared `select *` fail ("cached plan must not change result type"); the
 * adapter drops such a connection, and a single query is run again on a fresh one.
 */
describe.runIf(postgres)('prepared statements on PostgreSQL', () => {
  const schema = `t_${randomBase62(12).toLowerCase()}`;
  let admin: pg.Client;
  let db: Db;

  beforeAll(async () => {
    admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`create schema ${schema}`);
    await admin.query(`create table ${schema}.things (id text primary key, n integer not null)`);
    await admin.query(`insert into ${schema}.things values ('a', 1)`);
    db = fromPg({ connectionString: TEST_DATABASE_URL, schema, max: 2 });
  });
  afterAll(async () => {
    await db?.close();
    await admin?.query(`drop schema ${schema} cascade`);
    await admin?.end();
  });

  it('runs a statement as a named prepared statement on the connection', async () => {
    const sql = { text: 'select * from things where id = $1', values: ['a'] };
    const statements = await db.tx(async (q) => {
      await q.query(sql);
      return q.query<{ statement: string }>('select statement from pg_prepared_statements');
    });
    expect(statements.rows.map((r) => r.statement)).toContain(sql.text);
  });

  it('answers a query again after a column was added under it, and fails a transaction only once', async () => {
    const sql = { text: 'select * from things where id = $1', values: ['a'] };
    // Both connections of the pool prepare the statement.
    await Promise.all([db.tx((q) => q.query(sql)), db.tx((q) => q.query(sql))]);
    await admin.query(`alter table ${schema}.things add column label text`);
    expect((await db.query(sql)).rows).toEqual([{ id: 'a', n: 1, label: null }]);

    await admin.query(`alter table ${schema}.things add column note text`);
    const inTx = () => db.tx((q) => q.query(sql));
    const tries = await Promise.allSettled([inTx(), inTx()]);
    // A transaction is never run twice by the adapter: each connection that held the stale plan fails once.
    for (const t of tries)
      if (t.status === 'rejected') expect((t.reason as { code?: string }).code).toBe('0A000');
    expect((await inTx()).rows).toEqual([{ id: 'a', n: 1, label: null, note: null }]);
    expect((await inTx()).rows).toEqual([{ id: 'a', n: 1, label: null, note: null }]);
  });
});
