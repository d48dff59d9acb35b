import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderRow } from '../../src/modules/orders/index.js';
import { getOrder } from '../../src/modules/orders/index.js';
import type { ReconcileSummary } from '../../src/modules/stripe-events/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { startCheckout } from '../helpers/checkout.js';
import { runCli } from '../helpers/cli.js';
import { BACKENDS, urlWithSchema } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/services.js';
import { events, orderFixture, signed } from '../helpers/stripe-events.js';

describe.each(BACKENDS)('Stripe webhooks end to end through the emulator on %s', (backend) => {
  let ctx: TestContext;
  let stripe: Stripe;
  let serviceKey: string;
  let adminKey: string;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true });
    stripe = ctx.infra.stripe;
    serviceKey = await ctx.bearer('service');
    adminKey = await ctx.bearer('admin');
  });
  afterAll(() => ctx?.close());

  const checkout = (amount = 5000, orderId = `ord_${randomBase62(12)}`) =>
    startCheckout(ctx, serviceKey, { orderId, amount });
  const complete = (sessionId: string, outcome: 'paid' | 'async_pending' | 'declined') =>
    stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${sessionId}/complete`, { outcome });
  const paymentIntentOf = async (sessionId: string) =>
    (await stripe.checkout.sessions.retrieve(sessionId)).payment_intent as string;
  const order = async (id: string) => (await getOrder(ctx.testDb.db, id)) as OrderRow;
  async function until(orderId: string, what: string, check: (o: OrderRow) => boolean) {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const o = await order(orderId);
      if (check(o)) return o;
      if (Date.now() > deadline)
        throw new Error(`order ${orderId} never got ${what}; it is ${JSON.stringify(o)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async function setDelivery(enabled: boolean) {
    const endpoints = await stripe.webhookEndpoints.list();
    for (const e of endpoints.data) await stripe.webhookEndpoints.update(e.id, { disabled: !enabled });
  }
  const transitions = async () =>
    (await ctx.testDb.db.query<{ n: number }>('select count(*)::integer as n from order_events')).rows[0]!.n;

  it('pays, refunds and disputes through the emulator with every delivery duplicated and reordered', async () => {
    await stripe.rawRequest('POST', '/v1/test_helpers/webhooks/chaos', {
      duplicate_probability: 1,
      reorder_window_ms: 200,
    });
    try {
      const card = await checkout();
      const delayed = await checkout();
      const failing = await checkout();
      const disputed = await checkout();
      await complete(card.sessionId, 'paid');
      await complete(delayed.sessionId, 'async_pending');
      await complete(failing.sessionId, 'async_pending');
      await complete(disputed.sessionId, 'paid');
      await until(card.orderId, 'paid', (o) => o.status === 'paid');
      await until(delayed.orderId, 'processing', (o) => o.status === 'processing');
      await until(failing.orderId, 'processing', (o) => o.status === 'processing');

      await stripe.rawRequest(
        'POST',
        `/v1/test_helpers/payment_intents/${await paymentIntentOf(delayed.sessionId)}/async_result`,
        {
          result: 'succeeded',
        },
      );
      await stripe.rawRequest(
        'POST',
        `/v1/test_helpers/payment_intents/${await paymentIntentOf(failing.sessionId)}/async_result`,
        {
          result: 'failed',
        },
      );
      await until(delayed.orderId, 'paid', (o) => o.status === 'paid' && o.amount_paid === 5000);
      await until(failing.orderId, 'payment_failed', (o) => o.status === 'payment_failed');

      for (const [i, amount] of [1000, 1500].entries()) {
        const res = await ctx.app.inject({
          method: 'POST',
          url: `/v1/orders/${card.orderId}/refunds`,
          headers: { authorization: adminKey, 'idempotency-key': `refund-${card.orderId}-${i}` },
          payload: { amount },
        });
        expect(res.statusCode).toBe(201);
      }
      await until(card.orderId, 'two partial refunds', (o) => o.amount_refunded === 2500);
      expect((await order(card.orderId)).status).toBe('partially_refunded');

      await until(disputed.orderId, 'paid', (o) => o.status === 'paid');
      const pi = await stripe.paymentIntents.retrieve(await paymentIntentOf(disputed.sessionId));
      const dispute = (await stripe.rawRequest(
        'POST',
        `/v1/test_helpers/charges/${pi.latest_charge}/dispute`,
        {},
      )) as unknown as {
        id: string;
      };
      await until(disputed.orderId, 'an open dispute', (o) => o.dispute_status === 'open');
      await stripe.rawRequest('POST', `/v1/test_helpers/disputes/${dispute.id}/close`, { status: 'lost' });
      await until(disputed.orderId, 'a lost dispute', (o) => o.dispute_status === 'lost');
      expect((await order(disputed.orderId)).status).toBe('paid');

      const doubled = await ctx.testDb.db.query<{ n: number }>(
        `select count(*)::integer as n from order_events e join order_events f
            on e.order_id = f.order_id and e.cause = f.cause and e.seq < f.seq and e.to_status = f.to_status
         where e.cause like 'stripe:%' and e.changes = f.changes`,
      );
      expect(doubled.rows[0]?.n).toBe(0);
    } finally {
      await stripe.rawRequest('POST', '/v1/test_helpers/webhooks/chaos', { reset: true });
    }
  });

  it('pays an order by the session the buyer paid, even after a newer session changed the amount', async () => {
    const { orderId, sessionId: first } = await checkout(5000);
    const { sessionId: second } = await checkout(4000, orderId);
    expect(await order(orderId)).toMatchObject({ amount_total: 4000, checkout_session_id: second });
    // Stripe tells that the first session was paid: the buyer finished it the moment before it was replaced.
    const fx = orderFixture({ id: orderId, amount: 5000, sessionId: first });
    const deliver = (e: unknown) => {
      const { payload, header } = signed(e, ctx.infra.webhookSecrets[0]!);
      return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
    };
    const paymentIntentEvent = events.paymentSucceeded(fx);
    expect((await deliver(events.completed(fx))).status).toBe('processed');
    // The PaymentIntent's own event then changes nothing. (Delivered first, it would be judged by the session
    // Stripe says made it; this PaymentIntent is made up, so Stripe would say none did: a foreign payment.)
    expect((await deliver(paymentIntentEvent)).status).toBe('processed');

    const o = await order(orderId);
    expect(o).toMatchObject({
      status: 'paid',
      amount_paid: 5000,
      amount_total: 5000,
      checkout_session_id: first,
      payment_intent_id: fx.paymentIntentId,
      line_items: [{ name: 'Poster', unit_amount: 5000, quantity: 1 }],
    });
    // The newer session may still be open at Stripe: a person expires it before the buyer pays twice.
    expect(o.flags).toEqual([
      expect.objectContaining({ rule: 'newer_session_open', object_id: first, sessions: [second] }),
    ]);
    const { rows } = await ctx.testDb.db.query('select status from stripe_events where id = $1', [
      paymentIntentEvent.id,
    ]);
    expect(rows).toEqual([{ status: 'done' }]);
  });

  it('resolves a refund that arrives before its payment by asking Stripe whose PaymentIntent it is', async () => {
    await setDelivery(false);
    try {
      const { orderId, sessionId } = await checkout();
      await complete(sessionId, 'paid');
      const paymentIntent = await paymentIntentOf(sessionId);
      await stripe.refunds.create({ payment_intent: paymentIntent, amount: 500 });
      const recent = await stripe.events.list({ limit: 20 });
      const refundEvent = recent.data.find(
        (e) =>
          e.type === 'refund.created' && (e.data.object as Stripe.Refund).payment_intent === paymentIntent,
      )!;
      const completedEvent = recent.data.find(
        (e) =>
          e.type === 'checkout.session.completed' &&
          (e.data.object as Stripe.Checkout.Session).id === sessionId,
      )!;
      expect((refundEvent.data.object as Stripe.Refund).metadata).toEqual({});
      expect((await order(orderId)).payment_intent_id).toBeNull();

      const deliver = (e: Stripe.Event) => {
        const { payload, header } = signed(e, ctx.infra.webhookSecrets[0]!);
        return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
      };
      expect((await deliver(refundEvent)).status).toBe('queued');
      const waiting = await ctx.testDb.db.query('select status, order_id from stripe_events where id = $1', [
        refundEvent.id,
      ]);
      expect(waiting.rows).toEqual([{ status: 'deferred', order_id: orderId }]);

      expect((await deliver(completedEvent)).status).toBe('processed');
      expect(await order(orderId)).toMatchObject({ status: 'partially_refunded', amount_refunded: 500 });
      const applied = await ctx.testDb.db.query('select status from stripe_events where id = $1', [
        refundEvent.id,
      ]);
      expect(applied.rows).toEqual([{ status: 'done' }]);
    } finally {
      await setDelivery(true);
    }
  });

  it('with delivery turned off, payments complete in the emulator; reconcile applies every missing event; a second run applies nothing', async () => {
    await setDelivery(false);
    try {
      const card = await checkout();
      const delayed = await checkout();
      const refundedAndDisputed = await checkout();
      const abandoned = await checkout();
      await complete(card.sessionId, 'paid');
      await complete(delayed.sessionId, 'async_pending');
      await stripe.rawRequest(
        'POST',
        `/v1/test_helpers/payment_intents/${await paymentIntentOf(delayed.sessionId)}/async_result`,
        {
          result: 'succeeded',
        },
      );
      await complete(refundedAndDisputed.sessionId, 'paid');
      const pi = await stripe.paymentIntents.retrieve(await paymentIntentOf(refundedAndDisputed.sessionId));
      await stripe.refunds.create({ payment_intent: pi.id, amount: 1200 });
      const dispute = (await stripe.rawRequest(
        'POST',
        `/v1/test_helpers/charges/${pi.latest_charge}/dispute`,
        {},
      )) as unknown as {
        id: string;
      };
      await stripe.rawRequest('POST', `/v1/test_helpers/disputes/${dispute.id}/close`, { status: 'lost' });
      await stripe.checkout.sessions.expire(abandoned.sessionId);

      for (const o of [card, delayed, refundedAndDisputed, abandoned]) {
        expect((await order(o.orderId)).status).toBe('awaiting_payment');
      }

      const reconcile = async (): Promise<ReconcileSummary> => {
        if (backend === 'postgres' && ctx.testDb.schema) {
          const run = await runCli(['reconcile', '--since', '1h', '--json'], {
            DATABASE_URL: urlWithSchema(ctx.testDb.schema),
            REDIS_URL: TEST_REDIS_URL,
            STRIPE_API_BASE: ctx.infra.emulator!.url,
          });
          expect(run.stderr).toBe('');
          expect(run.code).toBe(0);
          return JSON.parse(run.stdout) as ReconcileSummary;
        }
        return ctx.modules.stripeEvents.reconcile({ since: new Date(Date.now() - 60 * 60_000) });
      };

      const first = await reconcile();
      expect(first.recorded).toBeGreaterThanOrEqual(10);
      expect(first.applied).toBeGreaterThan(0);
      expect(first.failed).toBe(0);
      expect(await order(card.orderId)).toMatchObject({ status: 'paid', amount_paid: 5000 });
      expect(await order(delayed.orderId)).toMatchObject({ status: 'paid', amount_paid: 5000 });
      expect(await order(refundedAndDisputed.orderId)).toMatchObject({
        status: 'partially_refunded',
        amount_refunded: 1200,
        dispute_status: 'lost',
      });
      expect((await order(abandoned.orderId)).status).toBe('expired');
      const unsettled = await ctx.testDb.db.query(
        `select id, type, status from stripe_events where status in ('pending', 'deferred', 'failed')`,
      );
      expect(unsettled.rows).toEqual([]);

      const before = await transitions();
      const second = await reconcile();
      expect(second).toMatchObject({ recorded: 0, applied: 0, ignored: 0, waiting: 0, failed: 0 });
      expect(second.listed).toBeGreaterThanOrEqual(first.recorded);
      expect(await transitions()).toBe(before);
    } finally {
      await setDelivery(true);
    }
  }, 60_000);
});
