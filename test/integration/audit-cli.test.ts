import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromPglite } from '../../src/adapters/pglite.js';
import { migrate } from '../../src/db/migrate.js';
import { appendAudit } from '../../src/modules/audit/index.js';
import { commissionEntry, tamperAsSuperuser } from '../helpers/audit.js';
import { runCli } from '../helpers/cli.js';
import { BACKENDS, type Backend, openTestDb, type TestDb, urlWithSchema } from '../helpers/db.js';

/**
 * The database the CLI process opens: a schema on PostgreSQL, or a PGlite data directory (the test closes
 * its own handle on it while the CLI runs, since PGlite is one process's alone).
 */
interface CliDb {
  env: Record<string, string>;
  /** Runs `use` on the database, then lets the CLI have it. */
  withDb<T>(use: (testDb: TestDb) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

async function cliDb(backend: Backend): Promise<CliDb> {
  if (backend === 'postgres') {
    const testDb = await openTestDb('postgres');
    return {
      env: { DATABASE_URL: urlWithSchema(testDb.schema!) },
      withDb: (use) => use(testDb),
      close: () => testDb.close(),
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'payments-audit-cli-'));
  const dataDir = join(dir, 'data');
  return {
    env: { DATA_DIR: dataDir },
    async withDb(use) {
      const db = await fromPglite(dataDir);
      try {
        await migrate(db);
        return await use({ db, schema: undefined, close: () => db.close() });
      } finally {
        await db.close();
      }
    },
    async close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

describe.each(BACKENDS)('payments-service audit verify on %s', (backend) => {
  let target: CliDb;
  beforeAll(async () => {
    target = await cliDb(backend);
    await target.withDb(async ({ db }) => {
      for (const stream of ['affiliate:aff_a', 'affiliate:aff_b', 'system'])
        for (let n = 1; n <= 2; n++) await db.tx((q) => appendAudit(q, commissionEntry(stream, n)));
    });
  });
  afterAll(() => target?.close());

  it('exits 0 on an intact log, then 1 naming the entry a superuser altered with the trigger disabled', {
    timeout: 120_000,
  }, async () => {
    const intact = await runCli(['audit', 'verify'], target.env);
    expect(intact).toEqual({ code: 0, stdout: 'audit log intact: 6 entries in 3 streams\n', stderr: '' });
    const intactJson = await runCli(['audit', 'verify', '--json'], target.env);
    expect(intactJson.code).toBe(0);
    expect(JSON.parse(intactJson.stdout)).toEqual({ ok: true, entries: 6, streams: 3 });

    await target.withDb((testDb) =>
      tamperAsSuperuser(
        testDb,
        `update audit_entries set data = jsonb_set(data, '{amount}', '1') where stream = 'affiliate:aff_b' and seq = 2`,
      ),
    );

    const broken = await runCli(['audit', 'verify'], target.env);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toBe('');
    expect(broken.stderr).toBe(
      'payments-service: audit log broken at affiliate:aff_b seq 2: hash_mismatch (its content does not match its hash)\n',
    );
    const brokenJson = await runCli(['audit', 'verify', '--json'], target.env);
    expect(brokenJson.code).toBe(1);
    expect(JSON.parse(brokenJson.stdout)).toEqual({
      ok: false,
      first_bad: {
        stream: 'affiliate:aff_b',
        seq: 2,
        reason: 'hash_mismatch',
        message: 'its content does not match its hash',
      },
    });
  });
});
