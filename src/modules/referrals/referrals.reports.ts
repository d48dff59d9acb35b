import { z } from 'zod';
import type { Queryable } from '../../ports/db.js';
import { csvLine } from '../../shared/csv.js';
import { formatAmount } from '../../shared/money.js';
import * as sql from './referrals.reports.sql.js';
import { listAffiliates } from './referrals.sql.js';

/**
 * The referral report (CONTRACT §3, `GET /v1/reports/referrals`), per currency, per period and per affiliate.
 *
 * A commission belongs to the period its order was paid in (UTC), with what has happened to it since: a
 * refund next month lowers the month it was earned in, so a period's figures are those of its conversions.
 * `conversions` counts every commission of the period, `referred_revenue` adds their bases; `accrued` is
 * their commission, `reversed` what refunds and lost disputes took back (reversals before payout, clawbacks
 * after), `net` the difference, and `pending`, `on_hold`, `approved`, `paid` split the net by each
 * commission's status now (a reversed commission's net is 0). A rejected commission counts as a conversion
 * and earns nothing. So `net = pending + on_hold + approved + paid` on every line. Clicks are counted by the
 * period they were made in and carry no currency: each currency's line of a period or an affiliate shows the
 * same clicks.
 */

const DAY_MS = 24 * 60 * 60 * 1000;
/** A day report spans at most a year, a month report ten. */
const MAX_DAYS = { day: 366, month: 3660 } as const;

const DateSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a date as YYYY-MM-DD')
  .refine((d) => !Number.isNaN(Date.parse(d)) && new Date(d).toISOString().startsWith(d), 'a real date');

export const ReportQuerySchema = z.object({
  from: DateSchema.optional(),
  to: DateSchema.optional(),
  group_by: z.enum(['day', 'month']).default('day'),
  affiliate_id: z
    .string()
    .regex(/^aff_[A-Za-z0-9]{1,64}$/, 'an affiliate id')
    .optional(),
  format: z.enum(['json', 'csv']).optional(),
});

export interface ReportQuery {
  from: string;
  to: string;
  groupBy: sql.Unit;
  /** One affiliate's report; null for every affiliate's (admins only). */
  affiliateId: string | null;
}

const isoDate = (d: Date) => d.toISOString().slice(0, 10);

/**
 * The window a query asks for, with its defaults: up to today (UTC); from 29 days before for a day report,
 * from the first of the month eleven months before for a month report. A message when it is not a window.
 */
export function reportWindow(
  q: { from?: string; to?: string; groupBy: sql.Unit },
  now: Date,
): { from: string; to: string } | string {
  const to = q.to ?? isoDate(now);
  const end = new Date(`${to}T00:00:00Z`);
  const from =
    q.from ??
    (q.groupBy === 'day'
      ? isoDate(new Date(end.getTime() - 29 * DAY_MS))
      : isoDate(new Date(Date.UTC(end.getUTCFullYear(), end.getUTCMonth() - 11, 1))));
  const days = (end.getTime() - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days < 1) return '`from` is after `to`';
  if (days > MAX_DAYS[q.groupBy]) return `a ${q.groupBy} report spans at most ${MAX_DAYS[q.groupBy]} days`;
  return { from, to };
}

const windowOf = (q: ReportQuery): sql.Window => ({
  from: new Date(`${q.from}T00:00:00Z`),
  until: new Date(Date.parse(`${q.to}T00:00:00Z`) + DAY_MS),
  unit: q.groupBy,
});

const money = (r: sql.MoneyRow) => ({
  conversions: r.conversions,
  referred_revenue: r.referred_revenue,
  commission_accrued: r.commission_accrued,
  commission_reversed: r.commission_reversed,
  commission_net: r.commission_accrued - r.commission_reversed,
});

const byStatus = (r: sql.MoneyRow) => ({
  pending: r.pending,
  on_hold: r.on_hold,
  approved: r.approved,
  paid: r.paid,
});

/** The JSON report: totals per currency, a series per period and currency, a line per affiliate and currency. */
export async function referralReport(q: Queryable, query: ReportQuery) {
  const w = windowOf(query);
  const rows = (await q.query<sql.MoneyRow>(sql.moneyOfWindow(w, query.affiliateId))).rows;
  const clickRows = (await q.query<sql.ClickRow>(sql.clicksOfWindow(w, query.affiliateId))).rows;
  const clicks = clickRows.find((k) => k.period === null && k.affiliate_id === null)?.clicks ?? 0;
  const clicksOf = new Map(clickRows.filter((k) => k.affiliate_id).map((k) => [k.affiliate_id, k.clicks]));
  const lines = rows.filter((r) => r.affiliate_id !== null);
  const names = new Map(
    (
      await q.query<{ id: string; name: string }>(
        sql.affiliateNames([...new Set(lines.map((r) => r.affiliate_id!))]),
      )
    ).rows.map((a) => [a.id, a.name]),
  );
  return {
    from: query.from,
    to: query.to,
    group_by: query.groupBy,
    affiliate_id: query.affiliateId,
    clicks,
    totals: rows
      .filter((r) => r.period === null && r.affiliate_id === null)
      .sort((a, b) => a.currency.localeCompare(b.currency))
      .map((r) => ({ currency: r.currency, clicks, ...money(r), ...byStatus(r) })),
    series: rows
      .filter((r) => r.period !== null)
      .sort((a, b) => a.period!.localeCompare(b.period!) || a.currency.localeCompare(b.currency))
      .map((r) => ({ period: r.period!, currency: r.currency, ...money(r) })),
    clicks_by_period: clickRows
      .filter((k) => k.period !== null)
      .sort((a, b) => a.period!.localeCompare(b.period!))
      .map((k) => ({ period: k.period!, clicks: k.clicks })),
    affiliates: lines
      .map((r) => ({
        affiliate_id: r.affiliate_id!,
        name: names.get(r.affiliate_id!) ?? '',
        currency: r.currency,
        clicks: clicksOf.get(r.affiliate_id) ?? 0,
        ...money(r),
      }))
      .sort(
        (a, b) =>
          a.currency.localeCompare(b.currency) ||
          b.commission_net - a.commission_net ||
          a.affiliate_id.localeCompare(b.affiliate_id),
      ),
  };
}

export type ReferralReport = Awaited<ReturnType<typeof referralReport>>;

/** The money columns of the CSV: each as an integer in minor units, then as a person reads it. */
const AMOUNTS = [
  'referred_revenue',
  'commission_accrued',
  'commission_reversed',
  'commission_net',
  'pending',
  'on_hold',
  'approved',
  'paid',
] as const;

export const REPORT_CSV_HEADER = csvLine([
  'period',
  'affiliate_id',
  'affiliate_name',
  'currency',
  'clicks',
  'conversions',
  ...AMOUNTS.flatMap((a) => [a, `${a}_formatted`]),
]);

type CsvRow = Omit<sql.MoneyRow, 'currency'> & { currency: string | null; clicks: number };

function csvRow(r: CsvRow, name: string): string {
  const figures: Record<(typeof AMOUNTS)[number], number> = {
    ...r,
    commission_net: r.commission_accrued - r.commission_reversed,
  };
  return csvLine([
    r.period,
    r.affiliate_id,
    name,
    r.currency,
    r.clicks,
    r.conversions,
    ...AMOUNTS.flatMap((a) => [figures[a], r.currency ? formatAmount(figures[a], r.currency) : '']),
  ]);
}

/** Affiliates read per query by the CSV: what bounds its memory, whatever the report's size. */
const CSV_CHUNK = 200;

/**
 * The CSV report, a line at a time: one row per affiliate × period × currency, read a few hundred affiliates
 * at a time, so memory stays the same however many rows it has.
 */
export async function* referralReportCsv(q: Queryable, query: ReportQuery): AsyncIterable<string> {
  const w = windowOf(query);
  yield REPORT_CSV_HEADER;
  let after: string | null = null;
  for (;;) {
    const affiliates: Array<{ id: string; name: string }> = query.affiliateId
      ? (await q.query<{ id: string; name: string }>(sql.affiliateNames([query.affiliateId]))).rows
      : (await q.query<{ id: string; name: string }>(listAffiliates(CSV_CHUNK, after))).rows;
    if (affiliates.length === 0) return;
    const names = new Map(affiliates.map((a) => [a.id, a.name]));
    const rows = (await q.query<CsvRow>(sql.rowsOfAffiliates(w, [...names.keys()]))).rows;
    let chunk = '';
    for (const r of rows) chunk += csvRow(r, names.get(r.affiliate_id!) ?? '');
    if (chunk) yield chunk;
    if (query.affiliateId || affiliates.length < CSV_CHUNK) return;
    after = affiliates.at(-1)!.id;
  }
}
