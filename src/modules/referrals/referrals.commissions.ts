import type { Queryable } from '../../ports/db.js';
import { notFound } from '../../shared/errors.js';
import { ledgerTotals } from './referrals.ledger.js';
import * as sql from './referrals.sql.js';

/** Commissions as CONTRACT §3 shows them: the frozen terms, the money from the ledger, flags and entries. */

interface FlagRow {
  commission_id: string;
  rule: string;
  mode: string;
  evidence: Record<string, unknown>;
}

function toView(c: sql.CommissionRow, entries: sql.EntryRow[], flags: FlagRow[]) {
  const totals = ledgerTotals(entries);
  return {
    id: c.id,
    order_id: c.order_id,
    affiliate_id: c.affiliate_id,
    code: c.code,
    currency: c.currency,
    base_amount: c.base_amount,
    amount: c.amount,
    reversed_amount: totals.reversed,
    net_amount: totals.net,
    paid_amount: totals.paid,
    status: c.status,
    hold_until: c.hold_until,
    dispute_open: c.dispute_open,
    terms: c.terms,
    flags: flags.map(({ rule, mode, evidence }) => ({ rule, mode, evidence })),
    entries: entries.map(({ type, amount, cause, at }) => ({ type, amount, cause, at })),
  };
}

export type CommissionView = ReturnType<typeof toView>;

async function withLedger(q: Queryable, rows: sql.CommissionRow[]): Promise<CommissionView[]> {
  const ids = rows.map((r) => r.id);
  const entries = (await q.query<sql.EntryRow & { commission_id: string }>(sql.entriesOf(ids))).rows;
  const flags = (await q.query<FlagRow>(sql.flagsOf(ids))).rows;
  return rows.map((c) =>
    toView(
      c,
      entries.filter((e) => e.commission_id === c.id),
      flags.filter((f) => f.commission_id === c.id),
    ),
  );
}

export async function getCommission(q: Queryable, id: string): Promise<CommissionView> {
  const row = (await q.query<sql.CommissionRow>(sql.selectCommission(id))).rows[0];
  if (!row) throw notFound(`commission ${id}`);
  return (await withLedger(q, [row]))[0]!;
}

export async function listCommissions(
  q: Queryable,
  filter: {
    affiliateId: string | null;
    status: sql.CommissionStatus | null;
    from: Date | null;
    to: Date | null;
    limit: number;
    startingAfter: string | null;
  },
): Promise<{ data: CommissionView[]; has_more: boolean }> {
  const rows = (await q.query<sql.CommissionRow>(sql.listCommissions({ ...filter, limit: filter.limit + 1 })))
    .rows;
  return { data: await withLedger(q, rows.slice(0, filter.limit)), has_more: rows.length > filter.limit };
}
