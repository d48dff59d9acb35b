import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../../src/modules/orders/index.js';
import type { PaymentCaptured, PaymentFactSubscriber } from '../../src/modules/payments/index.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { startCheckout } from '../helpers/checkout.js';
import { BACKENDS } from '../helpers/db.js';
import { createOrderFor, events, type FixtureEvent, orderFixture, signed } from '../helpers/stripe-events.js';

const SECRET = 'whsec_facts_suite';

/**
 * The seam of payment facts (docs/architecture.md): what happened to an order's money reaches subscribers
 * inside the transaction that applies the Stripe event, once per event, with the ids the referral programme
 * keys its ledger on and the evidence its fraud guards need.
 */
describe.each(BACKENDS)('payment facts on %s', (backend) => {
  let ctx: TestContext;
  /** Each fact as the subscriber saw it, with the charge details it asked for. */
  const seen: Array<Record<string, unknown>> = [];
  /** Facts of this order make the subscriber fail, as a broken referral programme would. */
  let failFor: string | null = null;

  const recorder: PaymentFactSubscriber = async (q, fact) => {
    // Written through the event's own transaction: it must exist exactly when the order change does.
    await q.query('insert into fact_log (cause, type, order_id) values ($1, $2, $3)', [
      fact.cause,
      fact.type,
      fact.order.id,
    ]);
    if (fact.order.id === failFor) throw new Error('the subscriber is broken');
    const { order, ...rest } = fact;
    seen.push({ ...rest, order_status: order.status });
  };

  beforeAll(async () => {
    ctx = await createTestContext(backend, {
      env: { STRIPE_WEBHOOK_SECRET: SECRET },
      modules: { factSubscribers: [recorder] },
    });
    await ctx.testDb.db.query(
      'create table fact_log (cause text not null, type text not null, order_id text)',
    );
  });
  afterAll(() => ctx?.close());

  const deliver = (e: FixtureEvent) => {
    const { payload, header } = signed(e, SECRET);
    return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
  };
  const logged = async (orderId: string) =>
    (
      await ctx.testDb.db.query<{ cause: string; type: string }>(
        'select cause, type from fact_log where order_id = $1 order by cause, type',
        [orderId],
      )
    ).rows;

  it('tells of a capture, refunds settled and reverted, and a dispute, once each, in the applying transaction', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    await ctx.testDb.db.query(`update orders set client_ip = '203.0.113.7' where id = $1`, [fx.id]);
    seen.length = 0;
    const charge = events.chargeSucceeded(fx, {
      customer: 'cus_facts',
      email: 'card-holder@example.com',
      riskLevel: 'elevated',
      fingerprint: 'fp_facts',
    });
    const paid = events.completed(fx, {
      customer: 'cus_facts',
      customer_details: { email: 'Buyer@Example.com' },
    });
    const refund = events.refund(fx, 're_facts', 2000);
    const chargeTotal = events.chargeRefunded(fx, 2000);
    const refundFailed = events.refund(fx, 're_facts', 2000, { status: 'failed', type: 'refund.updated' });
    const created = Math.floor(Date.now() / 1000);
    const lost = events.dispute(fx, 'dp_facts', 'lost', created, 'charge.dispute.closed');
    const history = [charge, paid, refund, chargeTotal, refundFailed, lost];
    for (const e of history) expect((await deliver(e)).status).toBe('processed');
    // Redelivered, every event is a duplicate and tells nothing again.
    for (const e of history) expect((await deliver(e)).status).toBe('duplicate');

    const base = { cause: expect.stringMatching(/^stripe:evt_/), event_id: expect.stringMatching(/^evt_/) };
    expect(seen).toEqual([
      {
        ...base,
        type: 'payment.captured',
        amount: 5000,
        currency: 'usd',
        checkout_session_id: fx.sessionId,
        payment_intent_id: fx.paymentIntentId,
        customer_id: 'cus_facts',
        buyer_email: 'Buyer@Example.com',
        buyer_ip: '203.0.113.7',
        charge: {
          charge_id: fx.chargeId,
          customer_id: 'cus_facts',
          card_fingerprint: 'fp_facts',
          risk_level: 'elevated',
          billing_email: 'card-holder@example.com',
        },
        order_status: 'paid',
      },
      {
        ...base,
        type: 'refund.settled',
        refund_id: 're_facts',
        amount: 2000,
        refunded_total: 2000,
        order_status: 'partially_refunded',
      },
      // The refund failed: its money is the merchant's again. The charge's running total told of it too, but
      // added nothing, so it raised nothing.
      {
        ...base,
        type: 'refund.reverted',
        refund_id: 're_facts',
        amount: 2000,
        refunded_total: 0,
        order_status: 'paid',
      },
      // A "closed" that came before its "created": opened and closed, as the order's history shows.
      {
        ...base,
        type: 'dispute.opened',
        dispute_id: 'dp_facts',
        amount: 5000,
        currency: 'usd',
        order_status: 'paid',
      },
      {
        ...base,
        type: 'dispute.closed',
        dispute_id: 'dp_facts',
        status: 'lost',
        amount: 5000,
        currency: 'usd',
        order_status: 'paid',
      },
    ]);
    expect(seen.map((f) => f['cause'])).toEqual(
      [paid, refund, refundFailed, lost, lost].map((e) => `stripe:${e.id}`),
    );
    expect((await logged(fx.id)).length).toBe(seen.length);
  });

  it('rolls the whole event back when a subscriber fails, and applies it once the subscriber recovers', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    failFor = fx.id;
    expect((await deliver(events.chargeSucceeded(fx))).status).toBe('processed');
    const paid = events.completed(fx);
    try {
      expect((await deliver(paid)).status).toBe('queued');
      expect((await getOrder(ctx.testDb.db, fx.id))?.status).toBe('awaiting_payment');
      // The subscriber's own write went with the rest of the transaction.
      expect(await logged(fx.id)).toEqual([]);
    } finally {
      failFor = null;
    }
    expect(await ctx.modules.stripeEvents.replayEvent(paid.id)).toMatchObject({ status: 'done' });
    expect((await getOrder(ctx.testDb.db, fx.id))?.status).toBe('paid');
    expect(await logged(fx.id)).toEqual([{ cause: `stripe:${paid.id}`, type: 'payment.captured' }]);
  });
});

describe.each(BACKENDS)('payment facts from the emulator on %s', (backend) => {
  let ctx: TestContext;
  const captured: PaymentCaptured[] = [];
  beforeAll(async () => {
    ctx = await createTestContext(backend, {
      emulator: true,
      modules: {
        factSubscribers: [
          async (_q, fact) => {
            if (fact.type === 'payment.captured') captured.push(fact);
          },
        ],
      },
    });
  });
  afterAll(() => ctx?.close());

  it("carries the card's fingerprint and Radar's risk level even when charge.succeeded comes after the payment", async () => {
    const endpoints = (await ctx.infra.stripe.webhookEndpoints.list()).data;
    for (const e of endpoints) await ctx.infra.stripe.webhookEndpoints.update(e.id, { disabled: true });
    const { sessionId } = await startCheckout(ctx, await ctx.bearer('service'), {
      orderId: `ord_facts_${backend}`,
    });
    await ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${sessionId}/complete`, {
      outcome: 'paid',
      customer: 'cus_late',
      card_fingerprint: 'fp_late_charge',
      risk_level: 'highest',
    });
    // Stripe's own events for the payment, delivered by hand: the session first, the charge after it.
    const all = (await ctx.infra.stripe.events.list({ limit: 100 })).data;
    const completed = all.find(
      (e) => e.type === 'checkout.session.completed' && (e.data.object as { id: string }).id === sessionId,
    )!;
    const paymentIntent = (completed.data.object as { payment_intent: string }).payment_intent;
    const charge = all.find(
      (e) =>
        e.type === 'charge.succeeded' &&
        (e.data.object as { payment_intent: string }).payment_intent === paymentIntent,
    )!;
    const deliver = (e: unknown) => {
      const { payload, header } = signed(e, ctx.infra.webhookSecrets[0]!);
      return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
    };
    expect((await deliver(completed)).status).toBe('processed');
    expect((await deliver(charge)).status).toBe('processed');
    expect(captured).toHaveLength(1);
    expect(captured[0]).toMatchObject({
      payment_intent_id: paymentIntent,
      customer_id: 'cus_late',
      charge: {
        charge_id: (charge.data.object as { id: string }).id,
        card_fingerprint: 'fp_late_charge',
        risk_level: 'highest',
        customer_id: 'cus_late',
      },
    });
  });
});
