import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder, type OrderRow } from '../../src/modules/orders/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { deliverSigned, referredCheckout } from '../helpers/referrals.js';
import { events, type OrderFixture } from '../helpers/stripe-events.js';

/**
 * The referral report against figures worked out by hand. The fixture is made through the real paths (the
 * API, signed Stripe events, the approval job, a payout), on a clock the test moves:
 *
 * | # | paid at (UTC)       | affiliate | base       | commission | then                                   | now      |
 * |---|---------------------|-----------|------------|------------|----------------------------------------|----------|
 * | 0 | 2026-09-30 23:59:59 | Ada 10%   | $10.00     | 100        | approved, paid (outside the window)    | paid     |
 * | 1 | 2026-10-05 10:00    | Ada 10%   | $100.00    | 1,000      | approved, paid, refund $25 → clawback 250 | paid |
 * | 2 | 2026-10-05 23:30    | Ben 15%   | ¥5,000     | 750        | approved                               | approved |
 * | 3 | 2026-10-20 12:00    | Ada 10%   | $200.00    | 2,000      | refund $50 → reversal 500              | pending  |
 * | 4 | 2026-11-03 09:00    | Ada 10%   | $30.00     | 300        | refunded in full → reversal 300        | reversed |
 * | 5 | 2026-11-03 18:00    | Ben 15%   | $80.00     | 1,200      | Ben bought it himself: held            | on_hold  |
 * | 6 | 2026-11-10 08:00    | Cy 5%     | ¥12,345    | 617        |                                        | pending  |
 *
 * Clicks: Ada 2 on 10-05 and 1 on 11-03, Ben 1 on 10-05, Cy 1 on 11-09, Dee (no sales) 1 on 10-12.
 */

const DAY_MS = 24 * 60 * 60 * 1000;

describe.each(BACKENDS)('the referral report on %s', (backend) => {
  let ctx: TestContext;
  let admin: string;
  let now = new Date('2026-09-30T23:59:59Z');
  const people: Record<
    'ada' | 'ben' | 'cy' | 'dee',
    { id: string; key: string; code: string; email: string }
  > = {} as never;

  const get = (url: string, bearer: string, headers: Record<string, string> = {}) =>
    ctx.app.inject({ method: 'GET', url, headers: { authorization: bearer, ...headers } });

  async function affiliate(name: string, basisPoints: number) {
    const email = `${name.toLowerCase()}.${randomBase62(6)}@example.com`;
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/affiliates',
      headers: { authorization: admin },
      payload: { name, email, commission: { type: 'percent', basis_points: basisPoints } },
    });
    expect(res.statusCode, res.body).toBe(201);
    const { id, api_key } = res.json() as { id: string; api_key: string };
    const code = `${name.toUpperCase()}${randomBase62(6)}`;
    const added = await ctx.app.inject({
      method: 'POST',
      url: `/v1/affiliates/${id}/codes`,
      headers: { authorization: admin },
      payload: { code },
    });
    expect(added.statusCode, added.body).toBe(201);
    return { id, key: `Bearer ${api_key}`, code, email };
  }

  const at = (iso: string) => {
    now = new Date(iso);
  };

  async function paid(who: keyof typeof people, amount: number, currency: string, buyerEmail?: string) {
    const service = await ctx.bearer('service');
    const fx = await referredCheckout(ctx, service, { code: people[who].code, amount, currency, buyerEmail });
    expect((await deliverSigned(ctx, events.completed(fx))).status).toBe('processed');
    return fx;
  }

  const refund = async (fx: OrderFixture, amount: number) =>
    expect((await deliverSigned(ctx, events.refund(fx, `re_${randomBase62(10)}`, amount))).status).toBe(
      'processed',
    );

  async function click(who: keyof typeof people, iso: string) {
    at(iso);
    const res = await ctx.app.inject({ method: 'GET', url: `/r/${people[who].code}` });
    expect(res.statusCode).toBe(302);
  }

  const statusOf = async (fx: OrderFixture) => {
    const order = (await getOrder(ctx.testDb.db, fx.id)) as OrderRow;
    return (await get(`/v1/commissions/${order.referral_commission_id}`, admin)).json().status as string;
  };

  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true, modules: { now: () => now } });
    admin = await ctx.bearer('admin');
    people.ada = await affiliate('Ada', 1000);
    people.ben = await affiliate('Ben', 1500);
    people.cy = await affiliate('Cy', 500);
    people.dee = await affiliate('Dee', 1000);

    at('2026-09-30T23:59:59Z');
    await paid('ada', 1000, 'usd');
    await click('ada', '2026-10-05T09:00:00Z');
    await click('ada', '2026-10-05T09:30:00Z');
    await click('ben', '2026-10-05T20:00:00Z');
    at('2026-10-05T10:00:00Z');
    const first = await paid('ada', 10_000, 'usd');
    at('2026-10-05T23:30:00Z');
    const yen = await paid('ben', 5000, 'jpy');
    await click('dee', '2026-10-12T12:00:00Z');
    at('2026-10-20T12:00:00Z');
    const third = await paid('ada', 20_000, 'usd');
    at('2026-11-02T12:00:00Z');
    await refund(third, 5000);
    await click('ada', '2026-11-03T08:00:00Z');
    at('2026-11-03T09:00:00Z');
    const fourth = await paid('ada', 3000, 'usd');
    at('2026-11-03T18:00:00Z');
    const held = await paid('ben', 8000, 'usd', people.ben.email);
    at('2026-11-04T12:00:00Z');
    await refund(fourth, 3000);
    await click('cy', '2026-11-09T15:00:00Z');
    at('2026-11-10T08:00:00Z');
    await paid('cy', 12_345, 'jpy');
    // The 30-day hold has passed for the orders of 09-30 and 10-05, not for that of 10-20.
    expect(await ctx.modules.referrals.approveDue()).toBe(3);
    const payout = await ctx.app.inject({
      method: 'POST',
      url: '/v1/payouts',
      headers: { authorization: admin, 'idempotency-key': `po-${randomBase62(8)}` },
      payload: { affiliate_id: people.ada.id, currency: 'usd' },
    });
    expect(payout.statusCode, payout.body).toBe(201);
    expect(payout.json().amount).toBe(1100);
    at('2026-11-12T12:00:00Z');
    await refund(first, 2500);

    expect(await statusOf(first)).toBe('paid');
    expect(await statusOf(yen)).toBe('approved');
    expect(await statusOf(third)).toBe('pending');
    expect(await statusOf(fourth)).toBe('reversed');
    expect(await statusOf(held)).toBe('on_hold');
    now = new Date(Date.now());
  }, 120_000);
  afterAll(() => ctx?.close());

  const zero = { pending: 0, on_hold: 0, approved: 0, paid: 0 };

  it('adds up every affiliate by month, per currency, with the status split and the clicks', async () => {
    const res = await get('/v1/reports/referrals?from=2026-10-01&to=2026-11-30&group_by=month', admin);
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report).toMatchObject({ from: '2026-10-01', to: '2026-11-30', group_by: 'month', clicks: 6 });
    expect(report.totals).toEqual([
      {
        currency: 'jpy',
        clicks: 6,
        conversions: 2,
        referred_revenue: 17_345,
        commission_accrued: 1367,
        commission_reversed: 0,
        commission_net: 1367,
        ...zero,
        pending: 617,
        approved: 750,
      },
      {
        currency: 'usd',
        clicks: 6,
        conversions: 4,
        referred_revenue: 41_000,
        commission_accrued: 4500,
        commission_reversed: 1050,
        commission_net: 3450,
        pending: 1500,
        on_hold: 1200,
        approved: 0,
        paid: 750,
      },
    ]);
    const money = (conversions: number, revenue: number, accrued: number, reversed: number) => ({
      conversions,
      referred_revenue: revenue,
      commission_accrued: accrued,
      commission_reversed: reversed,
      commission_net: accrued - reversed,
    });
    expect(report.series).toEqual([
      { period: '2026-10', currency: 'jpy', ...money(1, 5000, 750, 0) },
      { period: '2026-10', currency: 'usd', ...money(2, 30_000, 3000, 750) },
      { period: '2026-11', currency: 'jpy', ...money(1, 12_345, 617, 0) },
      { period: '2026-11', currency: 'usd', ...money(2, 11_000, 1500, 300) },
    ]);
    expect(report.clicks_by_period).toEqual([
      { period: '2026-10', clicks: 4 },
      { period: '2026-11', clicks: 2 },
    ]);
    const { ada, ben, cy } = people;
    // Per currency, the highest net first; Dee, with a click and no sale, has no currency to be listed in.
    expect(report.affiliates).toEqual([
      { affiliate_id: ben.id, name: 'Ben', currency: 'jpy', clicks: 1, ...money(1, 5000, 750, 0) },
      { affiliate_id: cy.id, name: 'Cy', currency: 'jpy', clicks: 1, ...money(1, 12_345, 617, 0) },
      { affiliate_id: ada.id, name: 'Ada', currency: 'usd', clicks: 3, ...money(3, 33_000, 3300, 1050) },
      { affiliate_id: ben.id, name: 'Ben', currency: 'usd', clicks: 1, ...money(1, 8000, 1200, 0) },
    ]);
  });

  it('buckets by UTC day, the 23:30 order on the day it was paid and the one at 23:59:59 outside the window', async () => {
    const res = await get('/v1/reports/referrals?from=2026-10-01&to=2026-11-30&group_by=day', admin);
    expect(res.statusCode, res.body).toBe(200);
    expect(
      res
        .json()
        .series.map((s: Record<string, unknown>) => [s.period, s.currency, s.conversions, s.commission_net]),
    ).toEqual([
      ['2026-10-05', 'jpy', 1, 750],
      ['2026-10-05', 'usd', 1, 750],
      ['2026-10-20', 'usd', 1, 1500],
      ['2026-11-03', 'usd', 2, 1200],
      ['2026-11-10', 'jpy', 1, 617],
    ]);
    expect(res.json().clicks_by_period).toEqual([
      { period: '2026-10-05', clicks: 3 },
      { period: '2026-10-12', clicks: 1 },
      { period: '2026-11-03', clicks: 1 },
      { period: '2026-11-09', clicks: 1 },
    ]);
    const september = await get('/v1/reports/referrals?from=2026-09-30&to=2026-09-30', admin);
    expect(september.json().totals).toEqual([
      expect.objectContaining({ currency: 'usd', conversions: 1, commission_net: 100, paid: 100 }),
    ]);
  });

  it('streams the CSV, one row per affiliate × period × currency, amounts in minor units and as read', async () => {
    const res = await get(
      '/v1/reports/referrals?from=2026-10-01&to=2026-11-30&group_by=month&format=csv',
      admin,
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toBe(
      'attachment; filename="referrals-2026-10-01-2026-11-30.csv"',
    );
    const [header, ...rows] = res.body.trimEnd().split('\n');
    expect(header).toBe(
      'period,affiliate_id,affiliate_name,currency,clicks,conversions,referred_revenue,referred_revenue_formatted,' +
        'commission_accrued,commission_accrued_formatted,commission_reversed,commission_reversed_formatted,' +
        'commission_net,commission_net_formatted,pending,pending_formatted,on_hold,on_hold_formatted,' +
        'approved,approved_formatted,paid,paid_formatted',
    );
    const { ada, ben, cy, dee } = people;
    const expected = [
      `2026-10,${ada.id},Ada,usd,2,2,30000,$300.00,3000,$30.00,750,$7.50,2250,$22.50,1500,$15.00,0,$0.00,0,$0.00,750,$7.50`,
      `2026-11,${ada.id},Ada,usd,1,1,3000,$30.00,300,$3.00,300,$3.00,0,$0.00,0,$0.00,0,$0.00,0,$0.00,0,$0.00`,
      `2026-10,${ben.id},Ben,jpy,1,1,5000,"¥5,000",750,¥750,0,¥0,750,¥750,0,¥0,0,¥0,750,¥750,0,¥0`,
      `2026-11,${ben.id},Ben,usd,0,1,8000,$80.00,1200,$12.00,0,$0.00,1200,$12.00,0,$0.00,1200,$12.00,0,$0.00,0,$0.00`,
      `2026-11,${cy.id},Cy,jpy,1,1,12345,"¥12,345",617,¥617,0,¥0,617,¥617,617,¥617,0,¥0,0,¥0,0,¥0`,
      `2026-10,${dee.id},Dee,,1,0,0,,0,,0,,0,,0,,0,,0,,0,`,
    ];
    // Affiliates in id order, each one's periods in order.
    const order = [ada, ben, cy, dee].map((a) => a.id).sort();
    const sorted = [...expected].sort(
      (a, b) => order.indexOf(a.split(',')[1]!) - order.indexOf(b.split(',')[1]!) || (a < b ? -1 : 1),
    );
    expect(rows).toEqual(sorted);

    const byAccept = await get('/v1/reports/referrals?from=2026-10-01&to=2026-11-30&group_by=month', admin, {
      accept: 'text/csv',
    });
    expect(byAccept.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(byAccept.body).toBe(res.body);
  });

  it("gives an affiliate its own report only, and 403 for another's", async () => {
    const { ada, ben } = people;
    const own = await get('/v1/reports/referrals?from=2026-10-01&to=2026-11-30&group_by=month', ada.key);
    expect(own.statusCode, own.body).toBe(200);
    expect(own.json()).toMatchObject({ affiliate_id: ada.id, clicks: 3 });
    expect(own.json().totals).toEqual([
      {
        currency: 'usd',
        clicks: 3,
        conversions: 3,
        referred_revenue: 33_000,
        commission_accrued: 3300,
        commission_reversed: 1050,
        commission_net: 2250,
        pending: 1500,
        on_hold: 0,
        approved: 0,
        paid: 750,
      },
    ]);
    expect(own.json().affiliates.map((a: { affiliate_id: string }) => a.affiliate_id)).toEqual([ada.id]);
    const csv = await get(
      '/v1/reports/referrals?from=2026-10-01&to=2026-11-30&group_by=day&format=csv',
      ada.key,
    );
    const ids = new Set(
      csv.body
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((r) => r.split(',')[1]),
    );
    expect([...ids]).toEqual([ada.id]);
    for (const url of [
      `/v1/reports/referrals?affiliate_id=${ben.id}`,
      `/v1/reports/referrals?affiliate_id=${ben.id}&format=csv`,
    ]) {
      const res = await get(url, ada.key);
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('forbidden');
    }
    const service = await get('/v1/reports/referrals', await ctx.bearer('service'));
    expect(service.statusCode).toBe(403);
  });

  it('refuses a window that is not one with 400 validation_failed, and an unknown affiliate with 404', async () => {
    for (const query of [
      'from=2026-11-31',
      'from=2026-12-01&to=2026-11-30',
      'from=2025-01-01&to=2026-11-30&group_by=day',
      'group_by=week',
      'format=xml',
      'affiliate_id=alice',
    ]) {
      const res = await get(`/v1/reports/referrals?${query}`, admin);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.code, query).toBe('validation_failed');
    }
    const unknown = await get('/v1/reports/referrals?affiliate_id=aff_nobody', admin);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('not_found');
  });

  it('defaults to the last 30 days, and to twelve months by month', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const days = (await get('/v1/reports/referrals', admin)).json();
    expect(days).toMatchObject({
      to: today,
      from: new Date(Date.parse(today) - 29 * DAY_MS).toISOString().slice(0, 10),
    });
    const months = (await get('/v1/reports/referrals?group_by=month', admin)).json();
    expect(months.to).toBe(today);
    expect(months.from.endsWith('-01')).toBe(true);
  });
});
