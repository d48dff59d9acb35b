import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../../src/modules/orders/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createAffiliate } from '../helpers/referrals.js';
import { events, orderFixture, signed } from '../helpers/stripe-events.js';

/**
 * The fraud guards as the ledger applies them: a guard in `enforce` mode holds the commission for an admin, in
 * `shadow` mode it only leaves its flag; the admin's verdict moves the commission and is audited with its
 * reason. (Each rule's case and near miss are unit-tested in referrals.fraud.test.ts.)
 */
describe.each(BACKENDS)('fraud guards through the ledger on %s', (backend) => {
  let enforcing: TestContext;
  let shadowing: TestContext;
  beforeAll(async () => {
    // Two referred orders are enough for the refund-rate guard here (10 by default).
    enforcing = await createTestContext(backend, {
      emulator: true,
      env: { FRAUD_REFUND_RATE_MIN_ORDERS: '2' },
    });
    shadowing = await createTestContext(backend, { emulator: true, env: { FRAUD_SELF_REFERRAL: 'shadow' } });
  });
  afterAll(async () => {
    await Promise.all([enforcing?.close(), shadowing?.close()]);
  });

  /** An affiliate, and an order it referred bought with `buyerEmail`, paid: its commission as the API shows it. */
  async function referredPurchase(
    ctx: TestContext,
    buyerEmail: (affiliateEmail: string) => string,
    existing?: { affiliate: { id: string; key: string }; code: string },
  ) {
    const admin = await ctx.bearer('admin');
    const code = existing?.code ?? `FR${randomBase62(8)}`;
    const affiliate = existing?.affiliate ?? (await createAffiliate(ctx, admin, [code]));
    const email = (
      await ctx.app.inject({
        method: 'GET',
        url: `/v1/affiliates/${affiliate.id}`,
        headers: { authorization: admin },
      })
    ).json().email as string;
    const orderId = `ord_${randomBase62(12)}`;
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/v1/checkout/sessions',
      headers: { authorization: await ctx.bearer('service'), 'idempotency-key': `co-${orderId}` },
      payload: {
        order_id: orderId,
        currency: 'usd',
        customer_email: buyerEmail(email),
        line_items: [{ name: 'Lamp', unit_amount: 8000, quantity: 1 }],
        referral_code: code,
      },
    });
    expect(res.statusCode, res.body).toBe(201);
    const fx = orderFixture({ id: orderId, amount: 8000, sessionId: res.json().id });
    const { payload, header } = signed(events.completed(fx), ctx.infra.webhookSecrets[0]!);
    expect((await ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header)).status).toBe(
      'processed',
    );
    const commissionId = (await getOrder(ctx.testDb.db, orderId))!.referral_commission_id!;
    const commission = await ctx.app.inject({
      method: 'GET',
      url: `/v1/commissions/${commissionId}`,
      headers: { authorization: admin },
    });
    return {
      admin,
      affiliate,
      code,
      fx,
      commission: commission.json() as {
        id: string;
        status: string;
        flags: Array<{ rule: string; mode: string; evidence: Record<string, unknown> }>;
      },
    };
  }

  // The affiliate's own address, written as a buyer might: another case, a +tag.
  const disguised = (email: string) => email.toUpperCase().replace('@', '+shop@');

  it('holds a self-referral in enforce mode, with its rule and evidence', async () => {
    const { commission } = await referredPurchase(enforcing, disguised);
    expect(commission.status).toBe('on_hold');
    expect(commission.flags).toEqual([expect.objectContaining({ rule: 'self_referral', mode: 'enforce' })]);
    expect(JSON.stringify(commission.flags[0]!.evidence)).not.toMatch(/@/);
  });

  it('does not fire on a buyer whose address differs by one character', async () => {
    const { commission } = await referredPurchase(enforcing, (email) => email.replace(/^a/, 'b'));
    expect(commission).toMatchObject({ status: 'pending', flags: [] });
  });

  it('only flags in shadow mode', async () => {
    const { commission } = await referredPurchase(shadowing, disguised);
    expect(commission.status).toBe('pending');
    expect(commission.flags).toEqual([expect.objectContaining({ rule: 'self_referral', mode: 'shadow' })]);
  });

  it("clears or rejects a held commission on an admin's verdict, audited with the reason", async () => {
    for (const [verdict, status] of [
      ['approve', 'pending'],
      ['reject', 'rejected'],
    ] as const) {
      const { admin, affiliate, commission } = await referredPurchase(enforcing, disguised);
      const res = await enforcing.app.inject({
        method: 'POST',
        url: `/v1/commissions/${commission.id}/${verdict}`,
        headers: { authorization: admin },
        payload: { reason: `checked by hand: ${verdict}` },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().status).toBe(status);
      const again = await enforcing.app.inject({
        method: 'POST',
        url: `/v1/commissions/${commission.id}/${verdict}`,
        headers: { authorization: admin },
        payload: { reason: 'twice' },
      });
      expect(again.statusCode).toBe(409);
      expect(again.json().error.code).toBe('commission_not_on_hold');
      const audit = await enforcing.app.inject({
        method: 'GET',
        url: `/v1/audit?stream=affiliate:${affiliate.id}&entity_id=${commission.id}`,
        headers: { authorization: admin },
      });
      const entries = audit.json().data as Array<{ action: string; data: Record<string, unknown> }>;
      expect(entries.map((e) => e.action)).toEqual(
        expect.arrayContaining([
          'fraud.flagged',
          `commission.review_${verdict === 'approve' ? 'cleared' : 'rejected'}`,
        ]),
      );
      expect(entries.at(-1)!.data).toMatchObject({ reason: `checked by hand: ${verdict}`, status });
    }
  });

  it("holds an affiliate's payouts while its refund rate is above the threshold, and records why", async () => {
    const buyer = () => `buyer.${randomBase62(6)}@shop.example`;
    const first = await referredPurchase(enforcing, buyer);
    await referredPurchase(enforcing, buyer, first);
    // One of its two referred orders is refunded: a rate of 50%, above the 30% allowed.
    const refund = signed(
      events.refund(first.fx, `re_${first.fx.id}`, 8000),
      enforcing.infra.webhookSecrets[0]!,
    );
    await enforcing.modules.stripeEvents.handleWebhookEvent(Buffer.from(refund.payload), refund.header);
    const res = await enforcing.app.inject({
      method: 'POST',
      url: '/v1/payouts',
      headers: { authorization: first.admin, 'idempotency-key': `po-${first.affiliate.id}` },
      payload: { affiliate_id: first.affiliate.id, currency: 'usd' },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({
      code: 'payout_held',
      details: { rule: 'refund_rate', evidence: { referred_orders: 2, refunded_orders: 1 } },
    });
    const audit = await enforcing.app.inject({
      method: 'GET',
      url: `/v1/audit?stream=affiliate:${first.affiliate.id}&entity_type=affiliate`,
      headers: { authorization: first.admin },
    });
    expect((audit.json().data as Array<{ action: string }>).map((e) => e.action)).toContain(
      'fraud.payout_flagged',
    );
  });
});
