import type { AuditLog } from '../../ports/audit.js';
import type { Db } from '../../ports/db.js';
import type { FraudConfig } from './referrals.fraud-config.js';

/** What the referral programme's functions share: built once by the module, passed to each. */
export interface ReferralsContext {
  db: Db;
  audit: AuditLog;
  /** The secret that IPs are hashed with (`REFERRAL_IP_SALT`). */
  ipSalt: string;
  /** Days a commission waits before it may be approved, unless the affiliate's terms say otherwise. */
  holdDays: number;
  fraud: FraudConfig;
  /** The programme's clock: holds, approvals and payouts read time from here, so tests can move it. */
  now: () => Date;
}
