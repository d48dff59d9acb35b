import { periodicWorker } from '../../jobs/index.js';
import type { AuditLog } from '../../ports/audit.js';
import type { Db } from '../../ports/db.js';
import { defineModule } from '../module.js';
import {
  type AffiliateInput,
  addCode,
  createAffiliate,
  getAffiliate,
  listAffiliates,
} from './referrals.affiliates.js';
import { listCommissions } from './referrals.commissions.js';
import type { ReferralsContext } from './referrals.context.js';
import type { FraudConfig } from './referrals.fraud-config.js';
import { commissionLedger } from './referrals.ledger.js';
import { approvalJob, approveDue, createPayout, reviewCommission } from './referrals.payouts.js';
import { referralRoutes } from './referrals.routes.js';
import { countClicks } from './referrals.sql.js';

/**
 * The referral programme (DESIGN §6): affiliates and their terms, codes and `/r/:code` links, the commission
 * ledger fed by the payment facts, fraud guards, approval after the hold, payouts. Every decision and every
 * money movement is appended to the audit log in the transaction that makes it. Owns `affiliates`,
 * `referral_codes`, `referral_clicks`, `affiliate_purchases`, `commissions`, `commission_entries`,
 * `commission_flags` and `payouts`.
 */
export { resolveCode } from './referrals.affiliates.js';
export type { CommissionView } from './referrals.commissions.js';
export {
  FRAUD_ENV_VARIABLES,
  type FraudConfig,
  FraudConfigError,
  loadFraudConfig,
} from './referrals.fraud-config.js';
export type { PayoutView } from './referrals.payouts.js';
export {
  REPORT_CSV_HEADER,
  type ReferralReport,
  type ReportQuery,
  referralReport,
  referralReportCsv,
} from './referrals.reports.js';
export { ATTRIBUTION_COOKIE, CODE_PATTERN } from './referrals.routes.js';
export type { CommissionStatus } from './referrals.sql.js';
export { type Terms, TermsSchema } from './referrals.terms.js';

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
    // What the REST routes call, bound to the programme's context, for the dashboard's forms and the demo seed.
    createAffiliate: (input: AffiliateInput, actor: string) => createAffiliate(ctx, input, actor),
    addCode: (affiliateId: string, code: string, actor: string) => addCode(ctx, affiliateId, code, actor),
    getAffiliate: (id: string) => getAffiliate(ctx.db, id),
    listAffiliates: (page: { limit: number; startingAfter: string | null }) => listAffiliates(ctx.db, page),
    listCommissions: (filter: Parameters<typeof listCommissions>[1]) => listCommissions(ctx.db, filter),
    reviewCommission: (id: string, verdict: 'approve' | 'reject', reason: string, actor: string) =>
      reviewCommission(ctx, id, verdict, reason, actor),
    createPayout: (input: { affiliateId: string; currency: string }, actor: string) =>
      createPayout(ctx, input, actor),
    /** Clicks on an affiliate's links, or on everyone's. */
    clickCount: async (affiliateId: string | null) =>
      (await ctx.db.query<{ n: number }>(countClicks(affiliateId))).rows[0]?.n ?? 0,
    routes: referralRoutes(ctx, deps.storefrontUrl),
    workers: () => [periodicWorker(deps.db, approvalJob(ctx), deps.periodicCheckMs)],
  });
}

export type ReferralsModule = ReturnType<typeof createReferralsModule>;
