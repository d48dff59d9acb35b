import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder, type OrderRow } from '../../src/modules/orders/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createAffiliate, deliverSigned, referredCheckout } from '../helpers/referrals.js';
import { events, type FixtureEvent, type OrderFixture } from '../helpers/stripe-events.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The referral programme end to end through the API and signed Stripe events: affiliates, codes and links,
 * attribution at checkout, the commission ledger with cumulative reversal, approval after the hold, payouts
 * with clawbacks netted, and who may see what.
 */
describe.each(BACKENDS)('the referral programme on %s', (backend) => {
  let ctx: TestContext;
  let admin: string;
  let service: string;
  // The programme's clock, moved by the tests.
  let now = new Date();
  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true, modules: { now: () => now } });
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
  const deliver = (e: FixtureEvent) => deliverSigned(ctx, e);

  async function affiliate(commission?: Record<string, unknown>) {
    const code = `AL${randomBase62(8)}`;
    return { ...(await createAffiliate(ctx, admin, [code], commission)), code };
  }

  /** A referred order checked out through our API, then paid by its own session's signed event. */
  async function referredPaidOrder(code: string, amount: number, currency = 'usd'): Promise<OrderFixture> {
    const fx = await referredCheckout(ctx, service, { code: code.toLowerCase(), amount, currency });
    expect((await deliver(events.completed(fx))).status).toBe('processed');
    return fx;
  }

  const commissionOf = async (orderId: string) => {
    const order = (await getOrder(ctx.testDb.db, orderId)) as OrderRow;
    const res = await api('GET', `/v1/commissions/${order.referral_commission_id}`, admin);
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as {
      id: string;
      status: string;
      amount: number;
      reversed_amount: number;
      net_amount: number;
      entries: Array<{ type: string; amount: number }>;
    };
  };

  it('accrues 10% of 10,000 and reverses 333, 333 and 334 for refunds of 3,333, 3,333 and 3,334', async () => {
    const a = await affiliate();
    const fx = await referredPaidOrder(a.code, 10_000);
    const order = await api('GET', `/v1/orders/${fx.id}`, service);
    const accrued = await commissionOf(fx.id);
    expect(accrued).toMatchObject({ amount: 1000, net_amount: 1000, status: 'pending' });
    expect(order.json().referral).toEqual({ code: a.code, affiliate_id: a.id, commission_id: accrued.id });
    // The Orders service is told of the referral too, in the order every notification carries.
    const { rows } = await ctx.testDb.db.query<{ payload: { order: { referral: unknown } } }>(
      'select payload from outbox where order_id = $1 order by seq desc limit 1',
      [fx.id],
    );
    expect(rows[0]!.payload.order.referral).toEqual({
      code: a.code,
      affiliate_id: a.id,
      commission_id: accrued.id,
    });

    let total = 0;
    const refunds = [3333, 3333, 3334].map((amount, i) => {
      total += amount;
      return [events.refund(fx, `re_${fx.id}_${i}`, amount), events.chargeRefunded(fx, total)];
    });
    // Delivered out of order and twice over: the ledger ends the same.
    for (const e of [...refunds[1]!, ...refunds[0]!, ...refunds[1]!, ...refunds[2]!, ...refunds[0]!])
      await deliver(e);
    const c = await commissionOf(fx.id);
    expect(c).toMatchObject({ amount: 1000, reversed_amount: 1000, net_amount: 0, status: 'reversed' });
    expect(
      c.entries
        .filter((e) => e.type === 'reversal')
        .map((e) => e.amount)
        .sort((x, y) => x - y),
    ).toEqual([-334, -333, -333]);
    expect(c.entries.reduce((sum, e) => sum + e.amount, 0)).toBe(0);
  });

  it('gives back what a failed refund reversed', async () => {
    const a = await affiliate();
    const fx = await referredPaidOrder(a.code, 10_000);
    await deliver(events.refund(fx, `re_${fx.id}_f`, 5000, { status: 'pending' }));
    expect(await commissionOf(fx.id)).toMatchObject({ net_amount: 500 });
    await deliver(events.refund(fx, `re_${fx.id}_f`, 5000, { status: 'failed', type: 'refund.updated' }));
    expect(await commissionOf(fx.id)).toMatchObject({
      net_amount: 1000,
      reversed_amount: 0,
      status: 'pending',
    });
  });

  it('refuses an unknown or inactive code with 400 referral_code_invalid and stores nothing', async () => {
    const a = await affiliate();
    expect((await api('POST', `/v1/affiliates/${a.id}/codes/${a.code}/deactivate`, admin)).statusCode).toBe(
      200,
    );
    for (const code of [a.code, 'NOSUCHCODE']) {
      const orderId = `ord_${randomBase62(12)}`;
      const res = await api(
        'POST',
        '/v1/checkout/sessions',
        service,
        {
          order_id: orderId,
          currency: 'usd',
          customer_email: 'buyer@shop.example',
          line_items: [{ name: 'Lamp', unit_amount: 1000, quantity: 1 }],
          referral_code: code,
        },
        `co-${orderId}`,
      );
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('referral_code_invalid');
      expect(await getOrder(ctx.testDb.db, orderId)).toBeNull();
    }
  });

  it('records a click on /r/:code and sets a 30-day SameSite=Lax attribution cookie', async () => {
    const a = await affiliate();
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/r/${a.code}?utm_source=blog`,
      headers: { 'user-agent': 'test-agent' },
    });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toContain(`ref=${a.code}`);
    expect(String(res.headers['set-cookie'])).toMatch(/ps_ref=.+; Max-Age=2592000; Path=\/; SameSite=Lax/);
    const { rows } = await ctx.testDb.db.query<{ ip_hash: string; user_agent: string; landing: unknown }>(
      'select ip_hash, user_agent, landing from referral_clicks where affiliate_id = $1',
      [a.id],
    );
    expect(rows).toEqual([
      {
        ip_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        user_agent: 'test-agent',
        landing: { utm_source: 'blog' },
      },
    ]);
  });

  it('approves only after hold_until and never during an open dispute; pays once per Idempotency-Key; nets a clawback', async () => {
    const a = await affiliate();
    const first = await referredPaidOrder(a.code, 10_000);
    const second = await referredPaidOrder(a.code, 20_000);
    await deliver(
      events.dispute(
        second,
        `dp_${second.id}`,
        'needs_response',
        Math.floor(Date.now() / 1000),
        'charge.dispute.created',
      ),
    );
    expect(await ctx.modules.referrals.approveDue()).toBe(0);
    now = new Date(Date.now() + 31 * DAY_MS);
    try {
      await ctx.modules.referrals.approveDue();
      expect((await commissionOf(first.id)).status).toBe('approved');
      expect((await commissionOf(second.id)).status).toBe('pending');

      const pay = () =>
        api('POST', '/v1/payouts', admin, { affiliate_id: a.id, currency: 'usd' }, `po-${a.id}`);
      const paid = await pay();
      expect(paid.statusCode, paid.body).toBe(201);
      expect(paid.json()).toMatchObject({
        amount: 1000,
        commission_ids: [(await commissionOf(first.id)).id],
      });
      expect((await pay()).json()).toEqual(paid.json());
      expect((await commissionOf(first.id)).status).toBe('paid');

      // The dispute on the second order is won: it may be approved. The first order's dispute is lost after
      // its payout: a clawback the next payout nets.
      await deliver(
        events.dispute(
          second,
          `dp_${second.id}`,
          'won',
          Math.floor(Date.now() / 1000),
          'charge.dispute.closed',
        ),
      );
      await ctx.modules.referrals.approveDue();
      await deliver(
        events.dispute(
          first,
          `dp_${first.id}`,
          'lost',
          Math.floor(Date.now() / 1000),
          'charge.dispute.closed',
        ),
      );
      const clawed = await commissionOf(first.id);
      expect(clawed.entries.map((e) => e.type)).toEqual(['accrual', 'payout', 'clawback']);
      expect(clawed.net_amount).toBe(0);
      const next = await api(
        'POST',
        '/v1/payouts',
        admin,
        { affiliate_id: a.id, currency: 'usd' },
        `po2-${a.id}`,
      );
      expect(next.statusCode, next.body).toBe(201);
      expect(next.json().amount).toBe(2000 - 1000);
    } finally {
      now = new Date();
    }
  });

  it('lets an affiliate key see only its own affiliate and commissions, and do nothing an admin does', async () => {
    const a = await affiliate();
    const b = await affiliate();
    const fx = await referredPaidOrder(b.code, 5000);
    expect((await api('GET', `/v1/affiliates/${a.id}`, a.key)).statusCode).toBe(200);
    const other = await api('GET', `/v1/affiliates/${b.id}`, a.key);
    expect(other.statusCode).toBe(403);
    expect(other.json().error.code).toBe('forbidden');
    const own = await api('GET', '/v1/commissions', a.key);
    expect(own.json().data).toEqual([]);
    expect((await api('GET', `/v1/commissions?affiliate_id=${b.id}`, a.key)).statusCode).toBe(403);
    const theirs = (await getOrder(ctx.testDb.db, fx.id))!.referral_commission_id;
    expect((await api('GET', `/v1/commissions/${theirs}`, a.key)).statusCode).toBe(403);
    expect(
      (
        await api('POST', '/v1/affiliates', a.key, {
          name: 'x',
          email: 'x@example.com',
          commission: { type: 'percent', basis_points: 1 },
        })
      ).statusCode,
    ).toBe(403);
    expect((await api('POST', `/v1/commissions/${theirs}/reject`, a.key, { reason: 'no' })).statusCode).toBe(
      403,
    );
    expect(
      (await api('POST', '/v1/payouts', a.key, { affiliate_id: a.id, currency: 'usd' }, 'po-x')).statusCode,
    ).toBe(403);
  });

  it('writes every change to the affiliate audit chain, which verifies', async () => {
    const a = await affiliate();
    await referredPaidOrder(a.code, 10_000);
    const res = await api('GET', `/v1/audit?stream=affiliate:${a.id}`, admin);
    expect(res.statusCode, res.body).toBe(200);
    const actions = (res.json().data as Array<{ action: string }>).map((e) => e.action);
    expect(actions).toEqual(
      expect.arrayContaining(['affiliate.created', 'code.created', 'commission.accrued']),
    );
    const verified = await api('GET', '/v1/audit/verify', admin);
    expect(verified.json()).toMatchObject({ ok: true });
  });
});
