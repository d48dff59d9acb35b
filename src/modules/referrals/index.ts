import { periodicWorker } from '../../jobs/index.js';
import type { AuditLog } from '../../ports/audit.js';
import type { Db } from '../../ports/db.js';
import { defineModule } from '../module.js';
import type { ReferralsContext } from './referrals.context.js';
import type { FraudConfig } from './referrals.fraud-config.js';
import { commissionLedger } from './referrals.ledger.js';
import { approvalJob, approveDue } from './referrals.payouts.js';
import { referralRoutes } from './referrals.routes.js';

/**
 * The referral programme (DESIGN §6): affiliates and their terms, codes and `/r/:code` links, the commission
 * ledger fed by the payment facts, fraud guards, approval after the hold, payouts. Every decision and every
 * money movement is appended to the audit log in the transaction that makes it. Owns `affiliates`,
 * `referral_codes`, `referral_clicks`, `affiliate_purchases`, `commissions`, `commission_entries`,
 * `commission_flags` and `payouts`.
 */
export { resolveCode } from './referrals.affiliates.js';
export {
  FRAUD_ENV_VARIABLES,
  type FraudConfig,
  FraudConfigError,
  loadFraudConfig,
} from './referrals.fraud-config.js';
export { ATTRIBUTION_COOKIE } from './referrals.routes.js';

export interface ReferralsDeps {
  db: Db;
  audit: AuditLog;
  ipSalt: string;
  holdDays: number;
  fraud: FraudConfig;
  /** Where `/r/:code` sends the visitor, with `?ref=<code>`. */
  storefrontUrl: string;
  now?: () => Date;
  periodicCheckMs?: number;
}

export function createReferralsModule(deps: ReferralsDeps) {
  const ctx: ReferralsContext = {
    db: deps.db,
    audit: deps.audit,
    ipSalt: deps.ipSalt,
    holdDays: deps.holdDays,
    fraud: deps.fraud,
    now: deps.now ?? (() => new Date()),
  };
  return defineModule({
    name: 'referrals',
    /** The commission ledger, as a subscriber of the payment facts (in the applying transaction). */
    ledger: commissionLedger(ctx),
    /** One run of the approval job: approves what is due now; returns how many. */
    approveDue: () => approveDue(ctx),
    routes: referralRoutes(ctx, deps.storefrontUrl),
    workers: () => [periodicWorker(deps.db, approvalJob(ctx), deps.periodicCheckMs)],
  });
}

export type ReferralsModule = ReturnType<typeof createReferralsModule>;
