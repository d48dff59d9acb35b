import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderRow } from '../../src/modules/orders/index.js';
import { changeOrder, getOrder, lockOrder, orderWithHistory } from '../../src/modules/orders/index.js';
import { recordCall, stripeIdempotencyKey } from '../../src/modules/stripe-calls/index.js';
import { moduleWorkers } from '../../src/modules.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { startCheckout, withoutDelivery } from '../helpers/checkout.js';
import { BACKENDS } from '../helpers/db.js';
import { signed, stripeEvent } from '../helpers/stripe-events.js';

let seq = 0;
const orderId = () => `ord_rf_${Date.now().toString(36)}_${++seq}`;

describe.each(BACKENDS)('refunds on %s', (backend) => {
  let ctx: TestContext;
  let admin: string;

  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true });
    admin = await ctx.bearer('admin');
  });
  afterAll(() => ctx?.close());

  const refund = (
    id: string,
    payload: Record<string, unknown> | undefined,
    key: string | null,
    bearer = admin,
  ) =>
    ctx.app.inject({
      method: 'POST',
      url: `/v1/orders/${id}/refunds`,
      headers: { authorization: bearer, ...(key ? { 'idempotency-key': key } : {}) },
      ...(payload ? { payload } : {}),
    });

  /**
   * A paid order of `total` cents: checkout through our API, paid in the emulator, and marked paid directly
   * (the webhook handlers are another module's; if they got there first, there is nothing left to do).
   */
  async function paidOrder(total = 5000): Promise<{ id: string; paymentIntent: string }> {
    const id = orderId();
    const { sessionId } = await startCheckout(ctx, admin, { orderId: id, amount: total, name: 'Thing' });
    await ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${sessionId}/complete`, {
      outcome: 'paid',
    });
    const session = await ctx.infra.stripe.checkout.sessions.retrieve(sessionId);
    const paymentIntent = session.payment_intent as string;
    await ctx.testDb.db.tx(async (q) => {
      const order = (await lockOrder(q, id))!;
      if (order.status === 'awaiting_payment') {
        await changeOrder(
          q,
          order,
          { status: 'paid', amount_paid: total, payment_intent_id: paymentIntent },
          'test:paid',
        );
      }
    });
    return { id, paymentIntent };
  }

  async function stripeRefunds(paymentIntent: string): Promise<Stripe.Refund[]> {
    return (await ctx.infra.stripe.refunds.list({ payment_intent: paymentIntent, limit: 100 })).data;
  }

  /** The emulator's own event of `type` about `object` (the newest one), delivered signed, as Stripe would. */
  async function deliverEmulated(type: string, object: (o: Record<string, unknown>) => boolean) {
    const event = (await ctx.infra.stripe.events.list({ limit: 100 })).data.find(
      (e) => e.type === type && object(e.data.object as unknown as Record<string, unknown>),
    );
    if (!event) throw new Error(`the emulator sent no ${type} of that object`);
    const { payload, header } = signed(event, ctx.infra.webhookSecrets[0]!);
    return (await ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header)).status;
  }

  const attempts = async (id: string) =>
    Number(
      (
        await ctx.testDb.db.query<{ n: number }>(
          `select count(*)::int as n from stripe_calls where order_id = $1 and kind = 'refund'`,
          [id],
        )
      ).rows[0]!.n,
    );

  it('refunds part of a paid order once, however often the request is retried', async () => {
    const { id, paymentIntent } = await paidOrder();
    const first = await refund(id, { amount: 1000, reason: 'requested_by_customer' }, `r-${id}`);
    expect(first.statusCode).toBe(201);
    expect(first.json()).toMatchObject({ order_id: id, amount: 1000 });
    expect(first.json().id).toMatch(/^re_/);
    expect(typeof first.json().status).toBe('string');

    const again = await refund(id, { amount: 1000, reason: 'requested_by_customer' }, `r-${id}`);
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);

    const refunds = await stripeRefunds(paymentIntent);
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({
      id: first.json().id,
      amount: 1000,
      metadata: { order_id: id, reason: 'requested_by_customer' },
    });
    expect(await attempts(id)).toBe(1);
  });

  it('refuses more than the balance with 422 refund_exceeds_balance, and refunds the rest without an amount', async () => {
    const { id, paymentIntent } = await paidOrder();
    expect((await refund(id, { amount: 2000 }, `a-${id}`)).statusCode).toBe(201);
    // 3000 left, counting the refund asked for even before its webhook updates amount_refunded.
    const over = await refund(id, { amount: 3001 }, `b-${id}`);
    expect(over.statusCode).toBe(422);
    expect(over.json().error).toMatchObject({
      code: 'refund_exceeds_balance',
      details: { balance: 3000, requested: 3001 },
    });
    expect(await attempts(id)).toBe(1);

    const rest = await refund(id, undefined, `c-${id}`);
    expect(rest.statusCode).toBe(201);
    expect(rest.json().amount).toBe(3000);
    const nothingLeft = await refund(id, undefined, `d-${id}`);
    expect(nothingLeft.statusCode).toBe(422);
    expect(nothingLeft.json().error.code).toBe('refund_exceeds_balance');
    expect((await stripeRefunds(paymentIntent)).map((r) => r.amount).sort()).toEqual([2000, 3000]);
  });

  it('never lets concurrent refunds with different keys exceed the balance', async () => {
    const { id, paymentIntent } = await paidOrder(5000);
    const answers = await Promise.all(
      Array.from({ length: 5 }, (_, i) => refund(id, { amount: 1500 }, `p-${id}-${i}`)),
    );
    const codes = answers.map((a) => a.statusCode).sort();
    expect(codes).toEqual([201, 201, 201, 422, 422]);
    for (const a of answers.filter((x) => x.statusCode === 422))
      expect(a.json().error.code).toBe('refund_exceeds_balance');
    const total = (await stripeRefunds(paymentIntent)).reduce((sum, r) => sum + r.amount, 0);
    expect(total).toBe(4500);
  });

  it('gives a refund that failed at Stripe back to the balance', async () => {
    const { id, paymentIntent } = await paidOrder();
    expect((await refund(id, { amount: 2000 }, `a-${id}`)).statusCode).toBe(201);
    // The emulator's refunds always succeed; Stripe tells of a failed one with refund.updated.
    const [made] = await stripeRefunds(paymentIntent);
    const failure = stripeEvent('refund.updated', {
      ...(made as unknown as Record<string, unknown>),
      status: 'failed',
      failure_reason: 'expired_or_canceled_card',
    });
    const { payload, header } = signed(failure, ctx.infra.webhookSecrets[0]!);
    const delivered = await ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
    expect(delivered.status).toBe('processed');

    const over = await refund(id, { amount: 5001 }, `b-${id}`);
    expect(over.statusCode).toBe(422);
    expect(over.json().error).toMatchObject({
      code: 'refund_exceeds_balance',
      details: { balance: 5000, requested: 5001 },
    });
    expect(await getOrder(ctx.testDb.db, id)).toMatchObject({
      status: 'paid',
      amount_refunded: 0,
    });
  });

  it('counts a dashboard refund told only by charge.refunded and our pending refund once each: accepts up to the true remainder, refuses beyond it with that balance', async () => {
    await withoutDelivery(ctx, async () => {
      const { id, paymentIntent } = await paidOrder(5000);
      // Made in Stripe's dashboard: no order in its metadata, and only its charge's running total reaches us.
      const dashboard = await ctx.infra.stripe.refunds.create({
        payment_intent: paymentIntent,
        amount: 1000,
      });
      expect(dashboard.metadata).toEqual({});
      const ofCharge = (total: number) => (o: Record<string, unknown>) =>
        o['payment_intent'] === paymentIntent && o['amount_refunded'] === total;
      expect(await deliverEmulated('charge.refunded', ofCharge(1000))).toBe('processed');
      expect(await getOrder(ctx.testDb.db, id)).toMatchObject({ amount_refunded: 1000 });

      // Ours: made at Stripe, none of its events delivered yet (pending, as far as the order knows).
      expect((await refund(id, { amount: 500 }, `a-${id}`)).statusCode).toBe(201);
      const over = await refund(id, { amount: 3501 }, `b-${id}`);
      expect(over.statusCode).toBe(422);
      expect(over.json().error).toMatchObject({
        code: 'refund_exceeds_balance',
        details: { balance: 3500, requested: 3501 },
      });
      // Refused by our balance, before any call to Stripe was recorded.
      expect(await attempts(id)).toBe(1);

      // The charge's total now includes ours, and the dashboard refund is told by id too: still once each.
      expect(await deliverEmulated('charge.refunded', ofCharge(1500))).toBe('processed');
      expect(await deliverEmulated('refund.created', (o) => o['id'] === dashboard.id)).toBe('processed');
      expect(await getOrder(ctx.testDb.db, id)).toMatchObject({ amount_refunded: 1500 });
      const stillOver = await refund(id, { amount: 3501 }, `c-${id}`);
      expect(stillOver.statusCode).toBe(422);
      expect(stillOver.json().error.details).toMatchObject({ balance: 3500 });

      const rest = await refund(id, { amount: 3500 }, `d-${id}`);
      expect(rest.statusCode).toBe(201);
      expect((await stripeRefunds(paymentIntent)).reduce((sum, r) => sum + r.amount, 0)).toBe(5000);
      expect(await attempts(id)).toBe(2);
    });
  });

  it('requires an Idempotency-Key and an admin key', async () => {
    const { id } = await paidOrder();
    const missing = await refund(id, { amount: 100 }, null);
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error.code).toBe('idempotency_key_missing');
    const asService = await refund(id, { amount: 100 }, `s-${id}`, await ctx.bearer('service'));
    expect(asService.statusCode).toBe(403);
    expect(await attempts(id)).toBe(0);
  });

  it('validates the amount and the order', async () => {
    const { id } = await paidOrder();
    const fractional = await refund(id, { amount: 10.5 }, `f-${id}`);
    expect(fractional.statusCode).toBe(400);
    expect(fractional.json().error.details.fields).toHaveProperty('body.amount');
    expect((await refund(id, { amount: 0 }, `z-${id}`)).statusCode).toBe(400);
    expect(await attempts(id)).toBe(0);
    const unknown = await refund('ord_nobody', { amount: 100 }, 'unknown-order');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('not_found');
  });

  it('refuses to refund an unpaid order and leaves amount_refunded to the webhook', async () => {
    const { id } = await paidOrder();
    expect((await refund(id, { amount: 500 }, `w-${id}`)).statusCode).toBe(201);
    const order = (await getOrder(ctx.testDb.db, id)) as OrderRow;
    // Only the charge.refunded webhook (another module) may move amount_refunded; this route never does.
    const history = (await orderWithHistory(ctx.testDb.db, id)).history;
    expect(history.some((h) => h.cause.startsWith('api:') && 'amount_refunded' in h.changes)).toBe(false);
    expect(order.amount_paid).toBe(5000);

    const unpaid = orderId();
    await ctx.app.inject({
      method: 'POST',
      url: '/v1/checkout/sessions',
      headers: { authorization: admin, 'idempotency-key': `co-${unpaid}` },
      payload: {
        order_id: unpaid,
        currency: 'usd',
        customer_email: 'buyer@example.com',
        line_items: [{ name: 'Thing', unit_amount: 700, quantity: 1 }],
      },
    });
    const res = await refund(unpaid, { amount: 100 }, `u-${unpaid}`);
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({ code: 'refund_exceeds_balance', details: { balance: 0 } });
  });

  it('is finished by the completer after a crash, with the refund Stripe already made', async () => {
    const { id, paymentIntent } = await paidOrder();
    const params = { payment_intent: paymentIntent, amount: 700, metadata: { order_id: id } };
    const attempt = await ctx.testDb.db.tx((q) =>
      recordCall(q, { kind: 'refund', orderId: id, requestId: null, amount: 700, params }),
    );
    // The crashed process got as far as Stripe's answer, and no further.
    const made = await ctx.infra.stripe.refunds.create(params, {
      idempotencyKey: stripeIdempotencyKey(attempt),
    });
    await ctx.testDb.db.query('update stripe_calls set next_attempt_at = now() where id = $1', [attempt.id]);
    const completer = moduleWorkers(ctx.modules).find((w) => w.name === 'stripe-calls-completer')!;
    expect(await completer.runOnce()).toBeGreaterThanOrEqual(1);
    const { rows } = await ctx.testDb.db.query<{ status: string; stripe_object_id: string }>(
      'select status, stripe_object_id from stripe_calls where id = $1',
      [attempt.id],
    );
    expect(rows[0]).toEqual({ status: 'done', stripe_object_id: made.id });
    expect((await stripeRefunds(paymentIntent)).map((r) => r.id)).toEqual([made.id]);
  });
});
