import pg from 'pg';
import type { AuditEntry } from '../../src/ports/audit.js';
import type { TestDb } from './db.js';
import { urlWithSchema } from './db.js';

/** An entry as a commission change would append it. */
export const commissionEntry = (
  stream: string,
  n: number,
  data: Record<string, unknown> = {},
): AuditEntry => ({
  stream,
  actor: `test:${n}`,
  action: 'commission.changed',
  entity_type: 'commission',
  entity_id: `com_${n}`,
  data: { amount: 100 * n, currency: 'usd', ...data },
});

/**
 * Runs `script` as the superuser the tests connect as, with the append-only trigger disabled (and enabled
 * again) in one transaction: what someone with the database's keys could do behind the service's back.
 */
export async function tamperAsSuperuser(testDb: TestDb, script: string): Promise<void> {
  const wrapped = `alter table audit_entries disable trigger audit_entries_append_only;
    ${script};
    alter table audit_entries enable trigger audit_entries_append_only;`;
  if (testDb.schema === undefined) {
    await testDb.db.tx((q) => q.exec(wrapped));
    return;
  }
  const client = new pg.Client({ connectionString: urlWithSchema(testDb.schema) });
  await client.connect();
  try {
    const { rows } = await client.query<{ super: boolean }>(
      "select current_setting('is_superuser') = 'on' as super",
    );
    if (!rows[0]?.super) throw new Error('tampering needs a superuser connection');
    await client.query(`begin; ${wrapped} commit;`);
  } finally {
    await client.end();
  }
}
