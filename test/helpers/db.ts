import pg from 'pg';
import { fromPglite } from '../../src/adapters/pglite.js';
import { fromPg } from '../../src/adapters/postgres.js';
import { migrate } from '../../src/db/migrate.js';
import type { Db } from '../../src/ports/db.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { postgresAvailable, TEST_DATABASE_URL } from './services.js';

export type Backend = 'pglite' | 'postgres';

/** The backends this run covers: PGlite always, PostgreSQL when it answers (required when CI is set). */
export const BACKENDS: Backend[] = (await postgresAvailable()) ? ['pglite', 'postgres'] : ['pglite'];

export interface TestDb {
  db: Db;
  /** The PostgreSQL schema, for tests that start other processes on the same data. */
  schema: string | undefined;
  close(): Promise<void>;
}

/** A migrated database of the test's own: a fresh in-memory PGlite, or a new schema on PostgreSQL. */
export async function openTestDb(backend: Backend, opts: { migrate?: boolean } = {}): Promise<TestDb> {
  if (backend === 'pglite') {
    const db = await fromPglite();
    if (opts.migrate !== false) await migrate(db);
    return { db, schema: undefined, close: () => db.close() };
  }
  const schema = `t_${randomBase62(12).toLowerCase()}`;
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  await admin.query(`create schema ${schema}`);
  await admin.end();
  const db = fromPg({ connectionString: TEST_DATABASE_URL, schema });
  if (opts.migrate !== false) await migrate(db);
  return {
    db,
    schema,
    async close() {
      await db.close();
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await c.connect();
      await c.query(`drop schema ${schema} cascade`);
      await c.end();
    },
  };
}

/** A connection string that puts every connection of another process in `schema`. */
export const urlWithSchema = (schema: string) => {
  const url = new URL(TEST_DATABASE_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.toString();
};
