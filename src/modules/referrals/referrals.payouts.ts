import type { PeriodicJob } from '../../jobs/index.js';
import type { Queryable } from '../../ports/db.js';
import { AppError, notFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import type { ReferralsContext } from './referrals.context.js';
import { payoutHold } from './referrals.fraud.js';
import { auditCommission } from './referrals.ledger.js';
import * as sql from './referrals.sql.js';

/** The commission lifecycle after accrual: approval after the hold, an admin's review, payouts. */

/** Commissions per approval batch: one short transaction each, well inside the job's lease. */
const APPROVAL_BATCH = 200;

/**
 * Approves every pending commission whose `hold_until` has passed and that no open dispute blocks, in batches;
 * returns how many. Each approval is audited. Safe to run on several instances: rows are claimed with
 * `skip locked`, and an approved commission is no longer pending.
 */
export async function approveDue(ctx: ReferralsContext): Promise<number> {
  let approved = 0;
  for (;;) {
    const n = await ctx.db.tx(async (q) => {
      const due = (await q.query<sql.CommissionRow>(sql.claimApprovable(ctx.now(), APPROVAL_BATCH))).rows;
      for (const c of due) {
        await q.query(sql.updateCommission(c.id, { status: 'approved' }, ctx.now()));
        await auditCommission(ctx, q, c, 'commission.approved', 'job:commission-approval', {
          hold_until: new Date(c.hold_until).toISOString(),
        });
      }
      return due.length;
    });
    approved += n;
    if (n < APPROVAL_BATCH) return approved;
  }
}

/** The approval as a periodic job: once an hour across all instances (holds are counted in days). */
export const approvalJob = (ctx: ReferralsContext): PeriodicJob => ({
  name: 'commission-approval',
  everyMs: 60 * 60_000,
  leaseMs: 10 * 60_000,
  retryMs: 60_000,
  run: async () => {
    await approveDue(ctx);
  },
});

/** An admin clears a held commission (`pending`, so its hold runs on) or rejects it; audited with the reason. */
export async function reviewCommission(
  ctx: ReferralsContext,
  id: string,
  verdict: 'approve' | 'reject',
  reason: string,
  actor: string,
) {
  return ctx.db.tx(async (q) => {
    const c = (await q.query<sql.CommissionRow>(sql.lockCommission(id))).rows[0];
    if (!c) throw notFound(`commission ${id}`);
    if (c.status !== 'on_hold') {
      throw new AppError(409, 'commission_not_on_hold', `commission ${id} is ${c.status}, not on_hold`, {
        details: { status: c.status },
      });
    }
    const status = verdict === 'approve' ? 'pending' : 'rejected';
    await q.query(sql.updateCommission(id, { status }, ctx.now()));
    await auditCommission(
      ctx,
      q,
      c,
      `commission.review_${verdict === 'approve' ? 'cleared' : 'rejected'}`,
      actor,
      {
        reason,
        status,
      },
    );
    return id;
  });
}

export interface PayoutView {
  id: string;
  affiliate_id: string;
  currency: string;
  amount: number;
  commission_ids: string[];
}

/**
 * Pays an affiliate everything approved in one currency, less what clawbacks took back from commissions paid
 * before: one payout entry per commission settled, each unique on the payout. A total at or below zero pays
 * nothing and waits (409 `nothing_payable`); an affiliate whose refund rate the guard holds gets 409
 * `payout_held` in `enforce` mode.
 */
export async function createPayout(
  ctx: ReferralsContext,
  input: { affiliateId: string; currency: string },
  actor: string,
): Promise<PayoutView> {
  // The guard's decision is recorded whether or not the payout then goes ahead.
  const held = await ctx.db.tx((q) => refuseHeldPayout(ctx, q, input.affiliateId, actor));
  if (held) throw held;
  return ctx.db.tx(async (q) => {
    await q.query(sql.lockPayable(input.affiliateId, input.currency));
    const owed = (
      await q.query<{ id: string; status: sql.CommissionStatus; owed: number }>(
        sql.payableOf(input.affiliateId, input.currency),
      )
    ).rows.filter((r) => r.owed !== 0);
    const amount = owed.reduce((total, r) => total + r.owed, 0);
    if (amount <= 0) {
      throw new AppError(
        409,
        'nothing_payable',
        `nothing is payable to ${input.affiliateId} in ${input.currency}`,
        {
          details: { balance: amount },
        },
      );
    }
    const at = ctx.now();
    const id = newId('po');
    const commissionIds = owed.map((r) => r.id);
    await q.query(
      sql.insertPayout({
        id,
        affiliateId: input.affiliateId,
        currency: input.currency,
        amount,
        commissionIds,
        at,
      }),
    );
    for (const r of owed) {
      await q.query(
        sql.insertEntry({ commissionId: r.id, type: 'payout', amount: r.owed, cause: `payout:${id}`, at }),
      );
      if (r.status === 'approved') await q.query(sql.updateCommission(r.id, { status: 'paid' }, at));
    }
    await ctx.audit.append(q, {
      stream: `affiliate:${input.affiliateId}`,
      actor,
      action: 'payout.created',
      entity_type: 'payout',
      entity_id: id,
      data: {
        amount,
        currency: input.currency,
        commissions: owed.map((r) => ({ id: r.id, amount: r.owed })),
      },
    });
    return {
      id,
      affiliate_id: input.affiliateId,
      currency: input.currency,
      amount,
      commission_ids: commissionIds,
    };
  });
}

/** Judges the refund-rate guard and audits a hold; returns the 409 to answer when it is enforced. */
async function refuseHeldPayout(
  ctx: ReferralsContext,
  q: Queryable,
  affiliateId: string,
  actor: string,
): Promise<AppError | null> {
  if (!(await q.query(sql.selectAffiliate(affiliateId))).rows[0]) throw notFound(`affiliate ${affiliateId}`);
  const stats = (await q.query<{ referred: number; refunded: number }>(sql.refundStats(affiliateId)))
    .rows[0]!;
  const hold = payoutHold({ referredOrders: stats.referred, refundedOrders: stats.refunded }, ctx.fraud);
  if (!hold) return null;
  await ctx.audit.append(q, {
    stream: `affiliate:${affiliateId}`,
    actor,
    action: 'fraud.payout_flagged',
    entity_type: 'affiliate',
    entity_id: affiliateId,
    data: { ...hold },
  });
  if (hold.mode !== 'enforce') return null;
  return new AppError(409, 'payout_held', `payouts to ${affiliateId} are held: ${hold.rule}`, {
    details: { rule: hold.rule, evidence: hold.evidence },
  });
}
