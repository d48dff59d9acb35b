import type { Queryable } from './db.js';

/** One entry of the tamper-evident audit log (DESIGN §6). */
export interface AuditEntry {
  /** The chain it belongs to: one per affiliate (`affiliate:aff_…`), plus `system`. */
  stream: string;
  /** Who did it: `stripe:evt_…`, `api:<key id>`, `job:<name>`. */
  actor: string;
  /** What happened, as `commission.accrued`. */
  action: string;
  entity_type: string;
  entity_id: string;
  data: Record<string, unknown>;
}

/**
 * Appends to the audit log inside the caller's transaction, so an entry exists exactly when the change it
 * records does. Each stream is a hash chain (`hash = SHA-256(prev_hash ‖ canonical JSON of the entry)`), so
 * concurrent work on different streams never waits on one global lock. Implemented by the audit module.
 */
export interface AuditLog {
  append(q: Queryable, entry: AuditEntry): Promise<void>;
}
