import { csvLine } from '../../shared/csv.js';
import type { CommissionStatus, CommissionView } from '../referrals/index.js';
import type { DashboardServices } from './dashboard.services.js';

/** What the views show, gathered through the owning modules' functions only. */

/** Enough for a demo and a small programme; past it the dashboard says the list is cut. */
const MAX_COMMISSIONS = 1000;

export async function allCommissions(
  services: DashboardServices,
  affiliateId: string | null,
  status: CommissionStatus | null = null,
): Promise<{ data: CommissionView[]; cut: boolean }> {
  const data: CommissionView[] = [];
  let startingAfter: string | null = null;
  for (;;) {
    const page = await services.referrals.listCommissions({
      affiliateId,
      status,
      from: null,
      to: null,
      limit: 100,
      startingAfter,
    });
    data.push(...page.data);
    if (!page.has_more || data.length >= MAX_COMMISSIONS) return { data, cut: page.has_more };
    startingAfter = page.data.at(-1)?.id ?? null;
  }
}

export interface LedgerLine {
  commission_id: string;
  order_id: string;
  affiliate_id: string;
  currency: string;
  type: string;
  amount: number;
  cause: string;
  at: string;
}

export const ledgerLines = (commissions: readonly CommissionView[]): LedgerLine[] =>
  commissions
    .flatMap((c) =>
      c.entries.map((e) => ({
        commission_id: c.id,
        order_id: c.order_id,
        affiliate_id: c.affiliate_id,
        currency: c.currency,
        type: e.type,
        amount: e.amount,
        cause: e.cause,
        at: new Date(e.at).toISOString(),
      })),
    )
    .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));

/** Net earnings per day and currency, cumulative: accruals less reversals and clawbacks (payouts move no net). */
export function earningsSeries(lines: readonly LedgerLine[]) {
  const byCurrency = new Map<string, Map<string, number>>();
  for (const l of lines) {
    if (l.type === 'payout') continue;
    const day = l.at.slice(0, 10);
    const days = byCurrency.get(l.currency) ?? new Map<string, number>();
    days.set(day, (days.get(day) ?? 0) + l.amount);
    byCurrency.set(l.currency, days);
  }
  return [...byCurrency].map(([currency, days]) => {
    let total = 0;
    const points = [...days].sort(([a], [b]) => (a < b ? -1 : 1));
    return {
      currency,
      days: points.map(([d]) => d),
      net: points.map(([, n]) => {
        total += n;
        return total;
      }),
    };
  });
}

export interface StatusLine {
  status: string;
  currency: string;
  count: number;
  net: number;
}

export function statusBreakdown(commissions: readonly CommissionView[]): StatusLine[] {
  const lines = new Map<string, StatusLine>();
  for (const c of commissions) {
    const key = `${c.status}/${c.currency}`;
    const line = lines.get(key) ?? { status: c.status, currency: c.currency, count: 0, net: 0 };
    line.count += 1;
    line.net += c.net_amount;
    lines.set(key, line);
  }
  return [...lines.values()].sort((a, b) => a.status.localeCompare(b.status));
}

export interface Owed {
  affiliate_id: string;
  currency: string;
  amount: number;
  commissions: number;
}

/** Approved net per affiliate and currency: what a payout would pay (clawbacks are netted by the payout). */
export function payoutsDue(approved: readonly CommissionView[]): Owed[] {
  const due = new Map<string, Owed>();
  for (const c of approved) {
    const key = `${c.affiliate_id}/${c.currency}`;
    const owed = due.get(key) ?? {
      affiliate_id: c.affiliate_id,
      currency: c.currency,
      amount: 0,
      commissions: 0,
    };
    owed.amount += c.net_amount - c.paid_amount;
    owed.commissions += 1;
    due.set(key, owed);
  }
  return [...due.values()].filter((o) => o.amount > 0);
}

export interface BoardLine {
  affiliate_id: string;
  currency: string;
  conversions: number;
  net: number;
}

export function leaderboard(commissions: readonly CommissionView[]): BoardLine[] {
  const board = new Map<string, BoardLine>();
  for (const c of commissions) {
    const key = `${c.affiliate_id}/${c.currency}`;
    const line = board.get(key) ?? {
      affiliate_id: c.affiliate_id,
      currency: c.currency,
      conversions: 0,
      net: 0,
    };
    line.conversions += 1;
    line.net += c.net_amount;
    board.set(key, line);
  }
  return [...board.values()].sort((a, b) => b.net - a.net);
}

/** The ledger as CSV, one line at a time. */
export async function* ledgerCsv(lines: readonly LedgerLine[]): AsyncIterable<string> {
  yield 'at,affiliate_id,commission_id,order_id,currency,type,amount,cause\n';
  for (const l of lines) {
    yield csvLine([l.at, l.affiliate_id, l.commission_id, l.order_id, l.currency, l.type, l.amount, l.cause]);
  }
}
