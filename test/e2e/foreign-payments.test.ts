import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderRow } from '../../src/modules/orders/index.js';
import { getOrder } from '../../src/modules/orders/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { startCheckout } from '../helpers/checkout.js';
import { BACKENDS } from '../helpers/db.js';
import { events, orderFixture, signed } from '../helpers/stripe-events.js';

/**
 * Only this service's own Checkout Sessions settle an order. A session someone else made on the same Stripe
 * account (a Payment Link, another integration) that names one of our orders, or an event of a connected
 * account, never moves it: the order is flagged `foreign_payment` and its own checkout goes on.
 */
describe.each(BACKENDS)('payments this service did not make, on %s', (backend) => {
  let ctx: TestContext;
  let stripe: Stripe;
  let service: string;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true });
    stripe = ctx.infra.stripe;
    service = await ctx.bearer('service');
  });
  afterAll(() => ctx?.close());

  const order = async (id: string) => (await getOrder(ctx.testDb.db, id)) as OrderRow;
  const complete = (sessionId: string, outcome: 'paid' | 'async_pending') =>
    stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${sessionId}/complete`, { outcome });
  const inbox = async (sessionId: string, type: string) =>
    (
      await ctx.testDb.db.query<{ status: string; reason: string | null }>(
        `select status, reason from stripe_events where type = $1 and payload->'data'->'object'->>'id' = $2`,
        [type, sessionId],
      )
    ).rows[0];
  async function until<T>(what: string, probe: () => Promise<T | undefined | null | false>): Promise<T> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const value = await probe();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`never saw ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  /** A session made straight at Stripe, as a Payment Link or another integration would, naming our order. */
  const foreignSession = (orderId: string, amount: number) =>
    stripe.checkout.sessions.create({
      mode: 'payment',
      client_reference_id: orderId,
      metadata: { order_id: orderId },
      payment_intent_data: { metadata: { order_id: orderId } },
      success_url: 'https://elsewhere.example/thanks',
      line_items: [
        {
          price_data: { currency: 'usd', unit_amount: amount, product_data: { name: 'Poster' } },
          quantity: 1,
        },
      ],
    });

  it('flags a paid session it did not create and leaves the order to its own session', async () => {
    const orderId = `ord_${randomBase62(12)}`;
    const own = await startCheckout(ctx, service, { orderId, amount: 5000 });
    const foreign = await foreignSession(orderId, 5000);
    await complete(foreign.id, 'paid');

    const flagged = await until('the foreign_payment flag', async () =>
      (await order(orderId)).flags.find((f) => f.rule === 'foreign_payment' && f.object_id === foreign.id),
    );
    expect(flagged).toMatchObject({ object_id: foreign.id, amount: 5000, currency: 'usd' });
    expect(await order(orderId)).toMatchObject({
      status: 'awaiting_payment',
      amount_paid: 0,
      checkout_session_id: own.sessionId,
    });
    expect(await inbox(foreign.id, 'checkout.session.completed')).toMatchObject({
      status: 'ignored',
      reason: expect.stringContaining('not a Checkout Session this service created'),
    });
    // Its PaymentIntent names the order too; Stripe says which session made it, so it is flagged, not applied.
    const pi = (await stripe.checkout.sessions.retrieve(foreign.id)).payment_intent as string;
    await until('the PaymentIntent flagged', async () =>
      (await order(orderId)).flags.find((f) => f.rule === 'foreign_payment' && f.object_id === pi),
    );

    // The Orders service was told, through the change of the order's flags.
    const { rows } = await ctx.testDb.db.query<{ changes: Record<string, unknown> }>(
      `select changes from order_events where order_id = $1 and changes ? 'flags' order by seq`,
      [orderId],
    );
    expect(rows.length).toBeGreaterThan(0);

    // The order's own session can still be paid, and it pays the order.
    await complete(own.sessionId, 'paid');
    const paid = await until('the order paid', async () => {
      const o = await order(orderId);
      return o.status === 'paid' && o;
    });
    expect(paid).toMatchObject({ amount_paid: 5000, checkout_session_id: own.sessionId });
  });

  it('lets a foreign session that completed unpaid block nothing', async () => {
    const orderId = `ord_${randomBase62(12)}`;
    const own = await startCheckout(ctx, service, { orderId, amount: 2500 });
    const foreign = await foreignSession(orderId, 2500);
    await complete(foreign.id, 'async_pending');
    await until('the unpaid foreign completion recorded', () =>
      inbox(foreign.id, 'checkout.session.completed'),
    );
    expect(await inbox(foreign.id, 'checkout.session.completed')).toMatchObject({ status: 'ignored' });
    const o = await order(orderId);
    expect(o).toMatchObject({ status: 'awaiting_payment', flags: [] });

    await complete(own.sessionId, 'paid');
    await until('the order paid', async () => (await order(orderId)).status === 'paid');
  });

  it('never moves an order on an event of a connected account, whatever it names', async () => {
    const fx = orderFixture();
    const own = await startCheckout(ctx, service, { orderId: fx.id, amount: fx.amount });
    const e = { ...events.completed({ ...fx, sessionId: own.sessionId }), account: 'acct_1Connected' };
    const { payload, header } = signed(e, ctx.infra.webhookSecrets[0]!);
    const answer = await ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);

    expect(answer.status).toBe('ignored');
    const o = await order(fx.id);
    expect(o).toMatchObject({ status: 'awaiting_payment', amount_paid: 0 });
    expect(o.flags).toEqual([
      expect.objectContaining({
        rule: 'foreign_payment',
        object_id: own.sessionId,
        account: 'acct_1Connected',
      }),
    ]);
  });
});
