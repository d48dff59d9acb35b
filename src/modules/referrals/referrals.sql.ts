import type { Sql } from '../../ports/db.js';
import type { FrozenTerms, Terms } from './referrals.terms.js';

/** The referral programme's statements, on the tables it owns (migrations/0008_referrals.sql). */

export interface AffiliateRow {
  id: string;
  name: string;
  email: string;
  terms: Terms & { hold_days?: number };
  created_at: Date;
  updated_at: Date;
}

export type CommissionStatus = 'pending' | 'on_hold' | 'approved' | 'paid' | 'reversed' | 'rejected';

export interface CommissionRow {
  id: string;
  order_id: string;
  affiliate_id: string;
  code: string;
  currency: string;
  base_amount: number;
  amount: number;
  terms: FrozenTerms;
  status: CommissionStatus;
  hold_until: Date;
  dispute_open: boolean;
  dispute_lost: boolean;
  reversed_from: CommissionStatus | null;
  buyer_ip_hash: string | null;
  created_at: Date;
  updated_at: Date;
}

export type EntryType = 'accrual' | 'reversal' | 'clawback' | 'payout';

export interface EntryRow {
  commission_id: string;
  type: EntryType;
  amount: number;
  cause: string;
  at: Date;
}

export const insertAffiliate = (a: {
  id: string;
  name: string;
  email: string;
  emailKey: string;
  terms: Terms;
}): Sql => ({
  text: `insert into affiliates (id, name, email, email_key, terms) values ($1, $2, $3, $4, $5::jsonb)
         returning id, name, email, terms, created_at, updated_at`,
  values: [a.id, a.name, a.email, a.emailKey, JSON.stringify(a.terms)],
});

export const selectAffiliate = (id: string): Sql => ({
  text: 'select id, name, email, terms, created_at, updated_at from affiliates where id = $1',
  values: [id],
});

export const listAffiliates = (limit: number, startingAfter: string | null): Sql => ({
  text: `select id, name, email, terms, created_at, updated_at from affiliates
          where ($2::text is null or id > $2) order by id limit $1`,
  values: [limit, startingAfter],
});

/** Adds a code; nothing when it exists in any case (`ALICE10` blocks `alice10`). */
export const insertCode = (code: string, affiliateId: string): Sql => ({
  text: `insert into referral_codes (code, affiliate_id) values ($1, $2)
         on conflict do nothing returning code, affiliate_id, active, created_at`,
  values: [code, affiliateId],
});

export const setCodeActive = (code: string, affiliateId: string, active: boolean): Sql => ({
  text: `update referral_codes set active = $3 where lower(code) = lower($1) and affiliate_id = $2
         returning code, affiliate_id, active, created_at`,
  values: [code, affiliateId, active],
});

export const codesOf = (affiliateId: string): Sql => ({
  text: `select code, affiliate_id, active, created_at from referral_codes where affiliate_id = $1 order by code`,
  values: [affiliateId],
});

/** The active code, as it was registered, whatever case it is given in. */
export const selectActiveCode = (code: string): Sql => ({
  text: `select code, affiliate_id from referral_codes where lower(code) = lower($1) and active`,
  values: [code],
});

export const insertClick = (c: {
  code: string;
  affiliateId: string;
  ipHash: string | null;
  userAgent: string | null;
  landing: Record<string, string>;
  at: Date;
}): Sql => ({
  text: `insert into referral_clicks (code, affiliate_id, ip_hash, user_agent, landing, at)
         values ($1, $2, $3, $4, $5::jsonb, $6) returning id`,
  values: [c.code, c.affiliateId, c.ipHash, c.userAgent, JSON.stringify(c.landing), c.at.toISOString()],
});

export const insertPurchase = (p: {
  orderId: string;
  affiliateId: string;
  customerId: string | null;
  cardFingerprint: string | null;
  ipHash: string | null;
}): Sql => ({
  text: `insert into affiliate_purchases (order_id, affiliate_id, customer_id, card_fingerprint, ip_hash)
         values ($1, $2, $3, $4, $5) on conflict (order_id) do nothing`,
  values: [p.orderId, p.affiliateId, p.customerId, p.cardFingerprint, p.ipHash],
});

/** The affiliate whose email, normalised, is this one: an affiliate buying for itself. */
export const affiliateByEmailKey = (emailKey: string): Sql => ({
  text: 'select id from affiliates where email_key = $1 limit 1',
  values: [emailKey],
});

export const purchasesOf = (affiliateId: string): Sql => ({
  text: `select customer_id, card_fingerprint, ip_hash from affiliate_purchases where affiliate_id = $1`,
  values: [affiliateId],
});

export const velocity = (code: string, ipHash: string | null, at: Date): Sql => ({
  text: `select (select count(*)::integer from commissions
                  where code = $1 and created_at > $3::timestamptz - interval '1 hour') as code_last_hour,
                (select count(*)::integer from commissions
                  where $2::text is not null and buyer_ip_hash = $2
                    and created_at > $3::timestamptz - interval '1 day') as ip_last_day`,
  values: [code, ipHash, at.toISOString()],
});

export const insertCommission = (c: {
  id: string;
  orderId: string;
  affiliateId: string;
  code: string;
  currency: string;
  base: number;
  amount: number;
  terms: FrozenTerms;
  status: CommissionStatus;
  holdUntil: Date;
  buyerIpHash: string | null;
  at: Date;
}): Sql => ({
  text: `insert into commissions (id, order_id, affiliate_id, code, currency, base_amount, amount, terms, status,
                                  hold_until, buyer_ip_hash, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11, $12, $12)
         on conflict (order_id) do nothing
         returning *`,
  values: [
    c.id,
    c.orderId,
    c.affiliateId,
    c.code,
    c.currency,
    c.base,
    c.amount,
    JSON.stringify(c.terms),
    c.status,
    c.holdUntil.toISOString(),
    c.buyerIpHash,
    c.at.toISOString(),
  ],
});

/** The order's commission, locked: every change to one commission is judged one at a time. */
export const lockCommissionOfOrder = (orderId: string): Sql => ({
  text: 'select * from commissions where order_id = $1 for update',
  values: [orderId],
});

export const lockCommission = (id: string): Sql => ({
  text: 'select * from commissions where id = $1 for update',
  values: [id],
});

export const selectCommission = (id: string): Sql => ({
  text: 'select * from commissions where id = $1',
  values: [id],
});

export const updateCommission = (
  id: string,
  fields: {
    status?: CommissionStatus;
    dispute_open?: boolean;
    dispute_lost?: boolean;
    reversed_from?: CommissionStatus;
  },
  at: Date,
): Sql => ({
  text: `update commissions set status = coalesce($2, status), dispute_open = coalesce($3, dispute_open),
                                dispute_lost = coalesce($4, dispute_lost),
                                reversed_from = coalesce($5, reversed_from), updated_at = $6
          where id = $1 returning *`,
  values: [
    id,
    fields.status ?? null,
    fields.dispute_open ?? null,
    fields.dispute_lost ?? null,
    fields.reversed_from ?? null,
    at.toISOString(),
  ],
});

/** Appends an entry unless one with the same cause exists; a row back when this call wrote it. */
export const insertEntry = (e: {
  commissionId: string;
  type: EntryType;
  amount: number;
  cause: string;
  at: Date;
}): Sql => ({
  text: `insert into commission_entries (commission_id, type, amount, cause, at) values ($1, $2, $3, $4, $5)
         on conflict (commission_id, cause) do nothing returning commission_id, type, amount, cause, at`,
  values: [e.commissionId, e.type, e.amount, e.cause, e.at.toISOString()],
});

export const entriesOf = (commissionIds: string[]): Sql => ({
  text: `select commission_id, type, amount, cause, at from commission_entries
          where commission_id = any($1::text[]) order by id`,
  values: [commissionIds],
});

export const insertFlag = (f: {
  commissionId: string;
  rule: string;
  mode: string;
  evidence: Record<string, unknown>;
  at: Date;
}): Sql => ({
  text: `insert into commission_flags (commission_id, rule, mode, evidence, at) values ($1, $2, $3, $4::jsonb, $5)
         on conflict do nothing`,
  values: [f.commissionId, f.rule, f.mode, JSON.stringify(f.evidence), f.at.toISOString()],
});

export const flagsOf = (commissionIds: string[]): Sql => ({
  text: `select commission_id, rule, mode, evidence from commission_flags where commission_id = any($1::text[])
          order by at, rule`,
  values: [commissionIds],
});

export const listCommissions = (f: {
  affiliateId: string | null;
  status: CommissionStatus | null;
  from: Date | null;
  to: Date | null;
  limit: number;
  startingAfter: string | null;
}): Sql => ({
  text: `select * from commissions
          where ($1::text is null or affiliate_id = $1) and ($2::text is null or status = $2)
            and ($3::timestamptz is null or created_at >= $3) and ($4::timestamptz is null or created_at < $4)
            and ($6::text is null or id > $6)
          order by id limit $5`,
  values: [
    f.affiliateId,
    f.status,
    f.from?.toISOString() ?? null,
    f.to?.toISOString() ?? null,
    f.limit,
    f.startingAfter,
  ],
});

/** Pending commissions whose hold has passed and that no open dispute blocks, locked for the approval. */
export const claimApprovable = (at: Date, limit: number): Sql => ({
  text: `select * from commissions
          where status = 'pending' and hold_until <= $1 and not dispute_open
          order by hold_until limit $2 for update skip locked`,
  values: [at.toISOString(), limit],
});

/** Locks the affiliate's payable commissions in one currency, so two payouts for it are judged in turn. */
export const lockPayable = (affiliateId: string, currency: string): Sql => ({
  text: `select id from commissions
          where affiliate_id = $1 and currency = $2 and status in ('approved', 'paid')
          order by id for update`,
  values: [affiliateId, currency],
});

/**
 * What an affiliate is owed in one currency, commission by commission: approved ones in full, and paid ones by
 * what clawbacks took back since (negative). Run after `lockPayable`.
 */
export const payableOf = (affiliateId: string, currency: string): Sql => ({
  text: `select c.id, c.status,
                (coalesce(sum(e.amount) filter (where e.type <> 'payout'), 0)
                  - coalesce(sum(e.amount) filter (where e.type = 'payout'), 0))::bigint as owed
           from commissions c join commission_entries e on e.commission_id = c.id
          where c.affiliate_id = $1 and c.currency = $2 and c.status in ('approved', 'paid')
          group by c.id, c.status
          order by c.id`,
  values: [affiliateId, currency],
});

export const insertPayout = (p: {
  id: string;
  affiliateId: string;
  currency: string;
  amount: number;
  commissionIds: string[];
  at: Date;
}): Sql => ({
  text: `insert into payouts (id, affiliate_id, currency, amount, commission_ids, created_at)
         values ($1, $2, $3, $4, $5::jsonb, $6) returning *`,
  values: [p.id, p.affiliateId, p.currency, p.amount, JSON.stringify(p.commissionIds), p.at.toISOString()],
});

export const refundStats = (affiliateId: string): Sql => ({
  text: `select count(*)::integer as referred,
                count(*) filter (where exists (select 1 from commission_entries e
                                                where e.commission_id = c.id
                                                  and e.type in ('reversal', 'clawback') and e.amount < 0))::integer
                  as refunded
           from commissions c where affiliate_id = $1`,
  values: [affiliateId],
});

/** Clicks on an affiliate's links (every affiliate's when null): the top of the dashboard's funnel. */
export const countClicks = (affiliateId: string | null): Sql => ({
  text: 'select count(*)::int as n from referral_clicks where ($1::text is null or affiliate_id = $1)',
  values: [affiliateId],
});
