import type { Queryable } from '../../ports/db.js';
import { newId } from '../../shared/ids.js';
import { changeOrder } from '../orders/index.js';
import type {
  DisputeClosed,
  DisputeOpened,
  PaymentCaptured,
  PaymentFact,
  PaymentFactSubscriber,
  RefundReverted,
  RefundSettled,
} from '../payments/index.js';
import { affiliateStream, hashIp } from './referrals.affiliates.js';
import type { ReferralsContext } from './referrals.context.js';
import { evaluateCommission, type FraudDecision, normalizeEmail } from './referrals.fraud.js';
import * as sql from './referrals.sql.js';
import { commissionAmount, type FrozenTerms, reversalTarget } from './referrals.terms.js';

/**
 * The commission ledger, fed by the payment facts inside the transaction that applies each Stripe event: a
 * commission and its accrual when a referred order is paid, reversals (or clawbacks, once paid) as refunds
 * and lost disputes come, each entry unique on its cause. Whatever order and however often the facts come,
 * the ledger ends the same: totals are recomputed from the cumulative refunded amount, never added up.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

/** The money of a commission as its entries tell it. */
export function ledgerTotals(entries: readonly sql.EntryRow[]) {
  const sum = (types: sql.EntryType[]) =>
    entries.filter((e) => types.includes(e.type)).reduce((total, e) => total + e.amount, 0);
  const accrued = sum(['accrual']);
  const net = sum(['accrual', 'reversal', 'clawback']);
  return { accrued, reversed: accrued - net, net, paid: sum(['payout']) };
}

async function entriesOf(q: Queryable, commissionId: string) {
  return (await q.query<sql.EntryRow>(sql.entriesOf([commissionId]))).rows;
}

/** An audit entry on the commission's affiliate stream, in the caller's transaction. */
export function auditCommission(
  ctx: ReferralsContext,
  q: Queryable,
  c: Pick<sql.CommissionRow, 'id' | 'affiliate_id'>,
  action: string,
  actor: string,
  data: Record<string, unknown>,
) {
  return ctx.audit.append(q, {
    stream: affiliateStream(c.affiliate_id),
    actor,
    action,
    entity_type: 'commission',
    entity_id: c.id,
    data,
  });
}

/** Keeps what an affiliate's own purchase showed of it (customer, card, address), for the guards. */
async function notePurchaseByAffiliate(ctx: ReferralsContext, q: Queryable, fact: PaymentCaptured) {
  if (!fact.buyer_email) return;
  const own = (await q.query<{ id: string }>(sql.affiliateByEmailKey(normalizeEmail(fact.buyer_email))))
    .rows[0];
  if (!own) return;
  await q.query(
    sql.insertPurchase({
      orderId: fact.order.id,
      affiliateId: own.id,
      customerId: fact.customer_id ?? fact.charge?.customer_id ?? null,
      cardFingerprint: fact.charge?.card_fingerprint ?? null,
      ipHash: fact.buyer_ip ? hashIp(ctx.ipSalt, fact.buyer_ip) : null,
    }),
  );
}

/** Everything the fraud guards judge a new commission by. */
async function fraudDecisions(
  ctx: ReferralsContext,
  q: Queryable,
  affiliate: sql.AffiliateRow,
  fact: PaymentCaptured,
  code: string,
  ipHash: string | null,
): Promise<FraudDecision[]> {
  const purchases = (
    await q.query<{ customer_id: string | null; card_fingerprint: string | null; ip_hash: string | null }>(
      sql.purchasesOf(affiliate.id),
    )
  ).rows;
  const counts = (
    await q.query<{ code_last_hour: number; ip_last_day: number }>(sql.velocity(code, ipHash, ctx.now()))
  ).rows[0]!;
  const present = <T>(values: Array<T | null>) => values.filter((v): v is T => v !== null);
  return evaluateCommission(
    {
      affiliate: {
        id: affiliate.id,
        email: affiliate.email,
        customerIds: present(purchases.map((p) => p.customer_id)),
        cardFingerprints: present(purchases.map((p) => p.card_fingerprint)),
        // The addresses the affiliate bought from itself. Clicks on its links come from its buyers, so a buyer
        // whose address matches a click is the normal case, not evidence.
        ipHashes: present(purchases.map((p) => p.ip_hash)),
      },
      order: {
        id: fact.order.id,
        amount: fact.amount,
        currency: fact.currency,
        buyerEmail: fact.buyer_email,
        customerId: fact.customer_id ?? fact.charge?.customer_id ?? null,
        cardFingerprint: fact.charge?.card_fingerprint ?? null,
        buyerIpHash: ipHash,
        riskLevel: fact.charge?.risk_level ?? null,
      },
      velocity: { codeConversionsLastHour: counts.code_last_hour, ipPurchasesLastDay: counts.ip_last_day },
    },
    ctx.fraud,
  );
}

/**
 * A referred order was paid: its commission, with the affiliate's terms frozen on it, and the accrual entry.
 * A guard in `enforce` mode holds it (`on_hold`) for an admin; in `shadow` mode it only leaves its flag.
 */
async function accrue(ctx: ReferralsContext, q: Queryable, fact: PaymentCaptured): Promise<void> {
  await notePurchaseByAffiliate(ctx, q, fact);
  const order = fact.order;
  if (!order.referral_affiliate_id || !order.referral_code) return;
  const affiliate = (await q.query<sql.AffiliateRow>(sql.selectAffiliate(order.referral_affiliate_id)))
    .rows[0];
  if (!affiliate) return;
  const amount = commissionAmount(affiliate.terms, fact.amount, fact.currency);
  const stream = { id: order.id, affiliate_id: affiliate.id };
  if (amount === null) {
    await auditCommission(ctx, q, stream, 'commission.not_earned', fact.cause, {
      order_id: order.id,
      reason: `flat terms in ${affiliate.terms.type === 'flat' ? affiliate.terms.currency : ''} pay nothing on an order in ${fact.currency}`,
    });
    return;
  }
  const at = ctx.now();
  const ipHash = fact.buyer_ip ? hashIp(ctx.ipSalt, fact.buyer_ip) : null;
  const decisions = await fraudDecisions(ctx, q, affiliate, fact, order.referral_code, ipHash);
  const holdDays = affiliate.terms.hold_days ?? ctx.holdDays;
  const terms: FrozenTerms = { ...affiliate.terms, rounding: 'floor', hold_days: holdDays };
  const commission = (
    await q.query<sql.CommissionRow>(
      sql.insertCommission({
        id: newId('com'),
        orderId: order.id,
        affiliateId: affiliate.id,
        code: order.referral_code,
        currency: fact.currency,
        base: fact.amount,
        amount,
        terms,
        status: decisions.some((d) => d.mode === 'enforce') ? 'on_hold' : 'pending',
        holdUntil: new Date(at.getTime() + holdDays * DAY_MS),
        buyerIpHash: ipHash,
        at,
      }),
    )
  ).rows[0];
  // A second capture of the same order (it is raised once per order; this is the guard) adds nothing.
  if (!commission) return;
  await q.query(
    sql.insertEntry({ commissionId: commission.id, type: 'accrual', amount, cause: fact.cause, at }),
  );
  await auditCommission(ctx, q, commission, 'commission.accrued', fact.cause, {
    order_id: order.id,
    base_amount: fact.amount,
    amount,
    currency: fact.currency,
    terms,
    status: commission.status,
    hold_until: new Date(commission.hold_until).toISOString(),
  });
  for (const d of decisions) {
    await q.query(
      sql.insertFlag({ commissionId: commission.id, rule: d.rule, mode: d.mode, evidence: d.evidence, at }),
    );
    await auditCommission(ctx, q, commission, 'fraud.flagged', fact.cause, { ...d });
  }
  await changeOrder(q, order, { referral_commission_id: commission.id }, fact.cause);
}

/**
 * Brings what stands reversed to its target: the cumulative refund share (`floor(amount × refunded / base)`),
 * or everything once a dispute is lost. Before payout the difference is a reversal, after it a clawback
 * (netted in the next payout); negative when a refund is given back.
 */
async function settleReversal(
  ctx: ReferralsContext,
  q: Queryable,
  c: sql.CommissionRow,
  target: number,
  cause: string,
  actor: string,
): Promise<void> {
  const totals = ledgerTotals(await entriesOf(q, c.id));
  const delta = target - totals.reversed;
  if (delta === 0) return;
  const type = c.status === 'paid' ? 'clawback' : 'reversal';
  const at = ctx.now();
  const written = (await q.query(sql.insertEntry({ commissionId: c.id, type, amount: -delta, cause, at })))
    .rows[0];
  if (!written) return;
  const net = totals.net - delta;
  // Netted to 0 before payout, the commission is reversed; should a refund be given back, it returns to
  // the status it had (a held one stays held for its review).
  let change: Parameters<typeof sql.updateCommission>[1] | null = null;
  if (net === 0 && ['pending', 'on_hold', 'approved'].includes(c.status))
    change = { status: 'reversed', reversed_from: c.status };
  else if (net > 0 && c.status === 'reversed') change = { status: c.reversed_from ?? 'pending' };
  const status = change?.status ?? c.status;
  if (change) await q.query(sql.updateCommission(c.id, change, at));
  await auditCommission(ctx, q, c, `commission.${type}`, actor, { amount: -delta, net, status, cause });
}

async function onRefund(ctx: ReferralsContext, q: Queryable, fact: RefundSettled | RefundReverted) {
  const c = (await q.query<sql.CommissionRow>(sql.lockCommissionOfOrder(fact.order.id))).rows[0];
  // A lost dispute reversed everything for good: refunds given back afterwards restore nothing.
  if (!c || c.status === 'rejected' || c.dispute_lost) return;
  const target = reversalTarget(c.amount, c.base_amount, fact.refunded_total);
  const cause = fact.refund_id ? `${fact.type}:${fact.refund_id}` : fact.cause;
  await settleReversal(ctx, q, c, target, cause, fact.cause);
}

async function onDispute(ctx: ReferralsContext, q: Queryable, fact: DisputeOpened | DisputeClosed) {
  const c = (await q.query<sql.CommissionRow>(sql.lockCommissionOfOrder(fact.order.id))).rows[0];
  if (!c) return;
  const open = fact.type === 'dispute.opened';
  if (c.dispute_open !== open) {
    await q.query(sql.updateCommission(c.id, { dispute_open: open }, ctx.now()));
    await auditCommission(
      ctx,
      q,
      c,
      open ? 'commission.dispute_opened' : 'commission.dispute_closed',
      fact.cause,
      {
        dispute_id: fact.dispute_id,
        ...(fact.type === 'dispute.closed' ? { outcome: fact.status } : {}),
      },
    );
  }
  if (fact.type === 'dispute.closed' && fact.status === 'lost' && !c.dispute_lost) {
    // Recorded even when refunds had already reversed everything, so that a refund given back later cannot
    // bring the commission back.
    const lost = (
      await q.query<sql.CommissionRow>(sql.updateCommission(c.id, { dispute_lost: true }, ctx.now()))
    ).rows[0]!;
    if (c.status !== 'rejected')
      await settleReversal(ctx, q, lost, c.amount, `dispute.lost:${fact.dispute_id}`, fact.cause);
  }
}

/** The ledger as a subscriber of the payment facts. */
export function commissionLedger(ctx: ReferralsContext): PaymentFactSubscriber {
  return async (q: Queryable, fact: PaymentFact) => {
    switch (fact.type) {
      case 'payment.captured':
        return accrue(ctx, q, fact);
      case 'refund.settled':
      case 'refund.reverted':
        return onRefund(ctx, q, fact);
      case 'dispute.opened':
      case 'dispute.closed':
        return onDispute(ctx, q, fact);
    }
  };
}
