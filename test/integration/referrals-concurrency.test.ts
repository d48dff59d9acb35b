import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredAuditEntry } from '../../src/modules/audit/index.js';
import { entryHash, GENESIS_HASH, type VerifyResult } from '../../src/modules/audit/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createAffiliate, referredCheckout } from '../helpers/referrals.js';
import { events, type FixtureEvent, type OrderFixture, signed } from '../helpers/stripe-events.js';

/** 10 affiliates × 10 referred orders, each accrued once and reversed by 9 partial refunds: 1,000 changes. */
const AFFILIATES = 10;
const ORDERS_PER_AFFILIATE = 10;
const REFUNDS_PER_ORDER = 9;
/** Not a multiple of anything the terms use, so that every reversal is floored. */
const ORDER_AMOUNT = 9_973;
/** Each refund; 9 of them refund 8,100 of 9,973, so every commission keeps some of its amount. */
const REFUND_AMOUNT = 900;

/**
 * Deliveries in flight at once. On PostgreSQL the service's pool (10 connections) makes a caller wait at most
 * 3 s for one: 20 short transactions queued on 10 connections stay far from that. PGlite has one connection,
 * which serialises every transaction whatever is in flight; fewer keep its queue short.
 */
const inFlightOn = (backend: string) => (backend === 'postgres' ? 20 : 8);

/**
 * Between two verifications amid the storm. A verification reads the whole log, which on PGlite holds its one
 * connection for a fifth of a second: a pause of seconds leaves nearly all of its time to the storm.
 */
const verifyPauseOn = (backend: string) => (backend === 'postgres' ? 200 : 2_500);

/** Runs `tasks` with at most `width` of them in flight, in their order; every result, in the same order. */
async function inWaves<T>(tasks: ReadonlyArray<() => Promise<T>>, width: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) {
      // Deliveries arrive as I/O: let the event loop turn between them, as sockets would make it.
      await new Promise((r) => setImmediate(r));
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, tasks.length) }, worker));
  return results;
}

/** The audit actions of a ledger change, and the entry type each records. */
const ACTIONS: Record<string, string> = {
  'commission.accrued': 'accrual',
  'commission.reversal': 'reversal',
};

/** Changes grouped by commission, each group in its given order. */
function byCommission(changes: ReadonlyArray<{ commission: string; change: string }>) {
  const map: Record<string, string[]> = {};
  for (const c of changes) {
    const list = map[c.commission] ?? [];
    list.push(c.change);
    map[c.commission] = list;
  }
  return map;
}

type AuditRow = StoredAuditEntry;

/**
 * Real commission changes, many at once, through the whole path: referred checkouts through the API, paid and
 * then partially refunded by signed Stripe events applied by the inbox, the ledger writing each accrual and
 * reversal with its audit entry on the affiliate's stream in the event's transaction. Whatever the
 * interleaving, each affiliate's chain stays one line (seq 1..n, each entry on the one before) and each
 * commission's ledger ends where the cumulative refunded total puts it.
 */
describe.each(BACKENDS)('the commission ledger under concurrent changes on %s', (backend) => {
  let ctx: TestContext;
  let admin: string;
  let service: string;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true });
    admin = await ctx.bearer('admin');
    service = await ctx.bearer('service');
  });
  afterAll(() => ctx?.close());

  const api = (method: 'GET' | 'POST', url: string, bearer: string, payload?: unknown, key?: string) =>
    ctx.app.inject({
      method,
      url,
      headers: { authorization: bearer, ...(key ? { 'idempotency-key': key } : {}) },
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
  const deliver = async (e: FixtureEvent) => {
    const { payload, header } = signed(e, ctx.infra.webhookSecrets[0]!);
    return {
      event: e,
      answer: await ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header),
    };
  };

  /** A referred order checked out through our API, then paid by its own session's signed event. */
  async function referredPaidOrder(code: string): Promise<OrderFixture> {
    const fx = await referredCheckout(ctx, service, { code, amount: ORDER_AMOUNT });
    const { answer } = await deliver(events.completed(fx));
    expect(answer.status, fx.id).toBe('processed');
    return fx;
  }

  it('keeps every affiliate chain intact with no fork under 1,000 concurrent commission changes over 10 affiliates', {
    timeout: 180_000,
  }, async () => {
    const width = inFlightOn(backend);
    // Different terms per affiliate, so that no two affiliates' ledgers move by the same amounts.
    const affiliates = await inWaves(
      Array.from({ length: AFFILIATES }, (_, i) => async () => {
        const code = `CC${randomBase62(8)}`;
        const basisPoints = 500 + 137 * i;
        const created = await createAffiliate(ctx, admin, [code], {
          type: 'percent',
          basis_points: basisPoints,
        });
        return { ...created, code, basisPoints };
      }),
      width,
    );

    // The accruals, concurrently: orders of every affiliate interleaved, so that one stream is appended to by
    // several transactions at once and ten streams are appended to side by side.
    const orderTasks = Array.from({ length: AFFILIATES * ORDERS_PER_AFFILIATE }, (_, n) => {
      const a = affiliates[n % AFFILIATES]!;
      return async () => ({ fx: await referredPaidOrder(a.code), affiliate: a });
    });
    const orders = await inWaves(orderTasks, width);

    // The reversals, concurrently: for every order, each refund as its own refund event (a distinct id) and
    // the charge's cumulative total, the two of one refund in flight together. Refund k of every order comes
    // before refund k + 1 of any order in the queue, so that each step of an order's total is a change.
    const refundTasks: Array<() => Promise<{ event: FixtureEvent; answer: { status: string } }>> = [];
    for (let k = 0; k < REFUNDS_PER_ORDER; k++)
      for (const { fx } of orders) {
        refundTasks.push(() => deliver(events.refund(fx, `re_${fx.id}_${k}`, REFUND_AMOUNT)));
        refundTasks.push(() => deliver(events.chargeRefunded(fx, REFUND_AMOUNT * (k + 1))));
      }
    // Verifying over and over amid the storm, through the API, never finds a break.
    let storming = true;
    const storm = inWaves(refundTasks, width).finally(() => {
      storming = false;
    });
    const verdicts: VerifyResult[] = [];
    let amid = 0;
    do {
      const res = await api('GET', '/v1/audit/verify', admin);
      expect(res.statusCode, res.body).toBe(200);
      verdicts.push(res.json());
      if (storming) amid++;
      await new Promise((r) => setTimeout(r, verifyPauseOn(backend)));
    } while (storming);
    const delivered = await storm;
    expect(verdicts.filter((v) => !v.ok)).toEqual([]);
    expect(amid).toBeGreaterThan(0);
    // Every delivery applied inline, none left queued for a retry (a deadlock or a pool timeout would be).
    expect(
      delivered.filter((d) => d.answer.status !== 'processed').map((d) => [d.event.type, d.answer]),
    ).toEqual([]);
    const inbox = (
      await ctx.testDb.db.query<{ status: string; n: number }>(
        'select status, count(*)::int as n from stripe_events group by status',
      )
    ).rows;
    expect(inbox).toEqual([{ status: 'done', n: orders.length * (1 + 2 * REFUNDS_PER_ORDER) }]);

    // The ledger: one accrual and one reversal per refund for every commission, summing to its net, its
    // reversals exactly the cumulative refunded total's share.
    const refunded = REFUND_AMOUNT * REFUNDS_PER_ORDER;
    let changes = 0;
    for (const { fx, affiliate } of orders) {
      const order = (
        await ctx.testDb.db.query<{
          amount_refunded: number;
          referral_commission_id: string;
          status: string;
        }>('select amount_refunded, referral_commission_id, status from orders where id = $1', [fx.id])
      ).rows[0]!;
      expect(order).toMatchObject({ amount_refunded: refunded, status: 'partially_refunded' });
      const commission = (
        await ctx.testDb.db.query<{
          id: string;
          affiliate_id: string;
          amount: number;
          base_amount: number;
          status: string;
        }>('select id, affiliate_id, amount, base_amount, status from commissions where order_id = $1', [
          fx.id,
        ])
      ).rows;
      const amount = Math.floor((ORDER_AMOUNT * affiliate.basisPoints) / 10_000);
      expect(commission).toEqual([
        {
          id: order.referral_commission_id,
          affiliate_id: affiliate.id,
          amount,
          base_amount: ORDER_AMOUNT,
          status: 'pending',
        },
      ]);
      const entries = (
        await ctx.testDb.db.query<{ type: string; amount: number; cause: string }>(
          'select type, amount, cause from commission_entries where commission_id = $1 order by id',
          [order.referral_commission_id],
        )
      ).rows;
      const target = Math.floor((amount * refunded) / ORDER_AMOUNT);
      const net = amount - target;
      expect(entries.map((e) => e.type)).toEqual(['accrual', ...Array(REFUNDS_PER_ORDER).fill('reversal')]);
      expect(entries[0]!.amount).toBe(amount);
      expect(entries.reduce((sum, e) => sum + e.amount, 0)).toBe(net);
      expect(entries.filter((e) => e.type === 'reversal').reduce((sum, e) => sum - e.amount, 0)).toBe(target);
      // Each reversal brought the total to the share of the refunded total it was told of, in order.
      let reversed = 0;
      entries.slice(1).forEach((e, k) => {
        reversed -= e.amount;
        expect(reversed, `${fx.id} after refund ${k}`).toBe(
          Math.floor((amount * REFUND_AMOUNT * (k + 1)) / ORDER_AMOUNT),
        );
      });
      const view = await api('GET', `/v1/commissions/${order.referral_commission_id}`, admin);
      expect(view.statusCode, view.body).toBe(200);
      expect(view.json()).toMatchObject({
        amount,
        net_amount: net,
        reversed_amount: target,
        status: 'pending',
      });
      changes += entries.length;
    }
    expect(changes).toBe(orders.length * (1 + REFUNDS_PER_ORDER));
    expect(changes).toBeGreaterThanOrEqual(1000);

    // The chains: each affiliate's stream is seq 1..n with no gap, no duplicate and no fork, each entry on the
    // hash of the one before, its head on the last; and it holds exactly one entry per ledger change.
    for (const a of affiliates) {
      const stream = `affiliate:${a.id}`;
      const rows = (
        await ctx.testDb.db.query<AuditRow>('select * from audit_entries where stream = $1 order by seq', [
          stream,
        ])
      ).rows;
      expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: rows.length }, (_, i) => i + 1));
      expect(new Set(rows.map((r) => r.prev_hash)).size).toBe(rows.length);
      expect(rows[0]!.prev_hash).toBe(GENESIS_HASH);
      expect(rows.slice(1).every((r, i) => r.prev_hash === rows[i]!.hash)).toBe(true);
      expect(rows.every((r) => entryHash({ ...r, at: new Date(r.at).toISOString() }) === r.hash)).toBe(true);
      const head = (
        await ctx.testDb.db.query('select last_seq, last_hash from audit_streams where stream = $1', [stream])
      ).rows;
      expect(head).toEqual([{ last_seq: rows.length, last_hash: rows.at(-1)!.hash }]);

      // One audit entry per ledger change, on this stream, in the order of the ledger, with its amount; and
      // nothing else than the affiliate's creation, its code and the fraud guards' flags.
      const ledger = (
        await ctx.testDb.db.query<{ commission_id: string; type: string; amount: number }>(
          `select e.commission_id, e.type, e.amount from commission_entries e
             join commissions c on c.id = e.commission_id where c.affiliate_id = $1 order by e.id`,
          [a.id],
        )
      ).rows;
      expect(ledger).toHaveLength(ORDERS_PER_AFFILIATE * (1 + REFUNDS_PER_ORDER));
      expect(
        byCommission(
          rows
            .filter((r) => r.action in ACTIONS)
            .map((r) => {
              expect(r.entity_type).toBe('commission');
              return { commission: r.entity_id, change: `${ACTIONS[r.action]} ${Number(r.data.amount)}` };
            }),
        ),
      ).toEqual(
        byCommission(ledger.map((e) => ({ commission: e.commission_id, change: `${e.type} ${e.amount}` }))),
      );
      const flags = (
        await ctx.testDb.db.query<{ n: number }>(
          `select count(*)::int as n from commission_flags f
             join commissions c on c.id = f.commission_id where c.affiliate_id = $1`,
          [a.id],
        )
      ).rows[0]!.n;
      const others = rows.filter((r) => !(r.action in ACTIONS)).map((r) => r.action);
      expect(others.sort()).toEqual([
        'affiliate.created',
        'code.created',
        ...Array(flags).fill('fraud.flagged'),
      ]);
    }

    // And the log as a whole verifies.
    const counts = (
      await ctx.testDb.db.query<{ entries: number; streams: number }>(
        'select count(*)::int as entries, count(distinct stream)::int as streams from audit_entries',
      )
    ).rows[0]!;
    const verified = await api('GET', '/v1/audit/verify', admin);
    expect(verified.statusCode).toBe(200);
    expect(verified.json()).toEqual({ ok: true, ...counts });
    expect(counts.entries).toBeGreaterThanOrEqual(1000);
    expect(counts.streams).toBeGreaterThanOrEqual(AFFILIATES);
  });
});
