import type { AuditLog } from '../../ports/audit.js';
import type { Db } from '../../ports/db.js';
import { defineModule } from '../module.js';
import { appendAudit } from './audit.append.js';
import { auditRoutes } from './audit.routes.js';
import { verifyAudit } from './audit.verify.js';

/**
 * The tamper-evident audit log (DESIGN §6): one hash chain per stream (`affiliate:<aff_id>`, `system`),
 * appended inside the transaction of the change each entry records, refused UPDATE and DELETE by triggers,
 * and verified by `audit verify` and `GET /v1/audit/verify`. Implements the `AuditLog` port. Owns
 * `audit_entries` and `audit_streams`.
 */
export { type AppendedEntry, appendAudit } from './audit.append.js';
export {
  affiliateStream,
  BREAKS,
  type BreakReason,
  canonicalEntry,
  entryHash,
  type FirstBad,
  GENESIS_HASH,
  type HashedEntry,
  SYSTEM_STREAM,
} from './audit.chain.js';
export { registerAuditCommands, type WithAudit } from './audit.cli.js';
export { type EntryView, type ListFilter, listAudit } from './audit.read.js';
export type { EntryRow as StoredAuditEntry } from './audit.sql.js';
export { type VerifyResult, verifyAudit } from './audit.verify.js';

/** The SQLSTATE the triggers raise for an UPDATE, DELETE or TRUNCATE of the log (migrations/0007_audit.sql). */
export const AUDIT_APPEND_ONLY_SQLSTATE = 'AU001';

/** The `AuditLog` port, for modules that take it as a dependency (the referral programme). */
export const auditLog: AuditLog = {
  async append(q, entry) {
    await appendAudit(q, entry);
  },
};

export function createAuditModule(deps: { db: Db }) {
  return defineModule({
    name: 'audit',
    routes: auditRoutes(deps.db),
    log: auditLog,
    verify: () => verifyAudit(deps.db),
  });
}
