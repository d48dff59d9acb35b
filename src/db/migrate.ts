import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../ports/db.js';
import { packageRoot } from '../shared/paths.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** `migrations/NNNN_name.sql`, in version order. Forward-only: a migration, once landed, is never edited. */
export function loadMigrations(dir = join(packageRoot(), 'migrations')): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 4)),
      name: f.slice(5, -4),
      sql: readFileSync(join(dir, f), 'utf8'),
    }));
}

/**
 * Applies every pending migration in one transaction under an advisory lock keyed by the schema, so two
 * `migrate` commands (or two instances starting together) run one after the other: the second waits, then
 * finds nothing left to do. Returns the versions it applied.
 */
export async function migrate(db: Db, migrations = loadMigrations()): Promise<number[]> {
  return db.tx(async (q) => {
    await q.query(`select pg_advisory_xact_lock(hashtext('payments-service.migrate.' || current_schema()))`);
    await q.exec(`
      create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`);
    const { rows } = await q.query<{ version: number }>('select version from schema_migrations');
    const applied = new Set(rows.map((r) => r.version));
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await q.exec(m.sql);
      await q.query('insert into schema_migrations (version, name) values ($1, $2)', [m.version, m.name]);
      done.push(m.version);
    }
    return done;
  });
}
