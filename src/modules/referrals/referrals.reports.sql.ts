import type { Sql } from '../../ports/db.js';

/**
 * The referral report's queries (`referrals.reports.ts` says what each figure means). A commission counts in
 * the period it was earned in, a click in the period it was made in, both in UTC. An affiliate's own report
 * and the admin's have different texts, so each gets its own plan: the affiliate's reads
 * `commissions_report_affiliate_idx`, the admin's `commissions_report_window_idx`.
 */

export type Unit = 'day' | 'month';

export interface Window {
  /** Inclusive. */
  from: Date;
  /** Exclusive. */
  until: Date;
  unit: Unit;
}

export interface MoneyRow {
  period: string | null;
  affiliate_id: string | null;
  currency: string;
  conversions: number;
  referred_revenue: number;
  commission_accrued: number;
  commission_reversed: number;
  pending: number;
  on_hold: number;
  approved: number;
  paid: number;
}

export interface ClickRow {
  period: string | null;
  affiliate_id: string | null;
  clicks: number;
}

const label = (unit: Unit) => (unit === 'day' ? `'YYYY-MM-DD'` : `'YYYY-MM'`);
const period = (column: string, unit: Unit) => `date_trunc('${unit}', ${column} at time zone 'UTC')`;

const MONEY = `count(*)::integer as conversions,
       sum(base_amount)::bigint as referred_revenue,
       coalesce(sum(amount) filter (where status <> 'rejected'), 0)::bigint as commission_accrued,
       coalesce(sum(reversed_amount) filter (where status <> 'rejected'), 0)::bigint as commission_reversed,
       coalesce(sum(amount - reversed_amount) filter (where status = 'pending'), 0)::bigint as pending,
       coalesce(sum(amount - reversed_amount) filter (where status = 'on_hold'), 0)::bigint as on_hold,
       coalesce(sum(amount - reversed_amount) filter (where status = 'approved'), 0)::bigint as approved,
       coalesce(sum(amount - reversed_amount) filter (where status = 'paid'), 0)::bigint as paid`;

const windowValues = (w: Window) => [w.from.toISOString(), w.until.toISOString()];

/**
 * The money of a window three ways in one scan: per currency (`period` and `affiliate_id` null), per period
 * and currency (`affiliate_id` null), per affiliate and currency (`period` null). One affiliate's, or all.
 */
export const moneyOfWindow = (w: Window, affiliateId: string | null): Sql => ({
  text: `select case when grouping(p) = 0 then to_char(p, ${label(w.unit)}) end as period,
       affiliate_id, currency, ${MONEY}
  from (select ${period('created_at', w.unit)} as p, affiliate_id, currency, status, base_amount, amount,
               reversed_amount
          from commissions
         where created_at >= $1 and created_at < $2${affiliateId ? ' and affiliate_id = $3' : ''}) c
 group by grouping sets ((currency), (p, currency), (affiliate_id, currency))`,
  values: affiliateId ? [...windowValues(w), affiliateId] : windowValues(w),
});

/** The clicks of a window: in all (both keys null), per period, per affiliate. */
export const clicksOfWindow = (w: Window, affiliateId: string | null): Sql => ({
  text: `select case when grouping(p) = 0 then to_char(p, ${label(w.unit)}) end as period, affiliate_id,
       count(*)::integer as clicks
  from (select ${period('at', w.unit)} as p, affiliate_id from referral_clicks
         where at >= $1 and at < $2${affiliateId ? ' and affiliate_id = $3' : ''}) k
 group by grouping sets ((), (p), (affiliate_id))`,
  values: affiliateId ? [...windowValues(w), affiliateId] : windowValues(w),
});

/**
 * The CSV's rows for some affiliates: one per affiliate × period × currency, ordered so; a period with clicks
 * and no commission has a row of its own with no currency.
 */
export const rowsOfAffiliates = (w: Window, affiliateIds: readonly string[]): Sql => ({
  text: `with money as (
  select affiliate_id, ${period('created_at', w.unit)} as p, currency, ${MONEY}
    from commissions
   where affiliate_id = any($3::text[]) and created_at >= $1 and created_at < $2
   group by 1, 2, 3
), clicks as (
  select affiliate_id, ${period('at', w.unit)} as p, count(*)::integer as clicks
    from referral_clicks
   where affiliate_id = any($3::text[]) and at >= $1 and at < $2
   group by 1, 2
)
select to_char(coalesce(m.p, k.p), ${label(w.unit)}) as period, coalesce(m.affiliate_id, k.affiliate_id) as affiliate_id,
       m.currency, coalesce(k.clicks, 0) as clicks, coalesce(m.conversions, 0) as conversions,
       coalesce(m.referred_revenue, 0) as referred_revenue, coalesce(m.commission_accrued, 0) as commission_accrued,
       coalesce(m.commission_reversed, 0) as commission_reversed, coalesce(m.pending, 0) as pending,
       coalesce(m.on_hold, 0) as on_hold, coalesce(m.approved, 0) as approved, coalesce(m.paid, 0) as paid
  from money m full join clicks k on k.affiliate_id = m.affiliate_id and k.p = m.p
 order by 2, 1, 3 nulls first`,
  values: [...windowValues(w), affiliateIds],
});

export const affiliateNames = (ids: readonly string[]): Sql => ({
  text: 'select id, name from affiliates where id = any($1::text[])',
  values: [ids],
});
