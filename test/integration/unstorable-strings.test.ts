import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../../src/modules/orders/index.js';
import { createModules } from '../../src/modules.js';
import type { Db, Queryable } from '../../src/ports/db.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { startCheckout } from '../helpers/checkout.js';
import { BACKENDS } from '../helpers/db.js';
import {
  createOrderFor,
  events,
  type FixtureEvent,
  orderFixture,
  signed,
  stripeEvent,
} from '../helpers/stripe-events.js';
import { until } from '../helpers/wait.js';

const SECRET = 'whsec_unstorable_suite';
const NUL = '\u0000';

/** The database as the service sees it, refusing to record the events whose id `refuse` names. */
function refusingInserts(db: Db, refuse: ReadonlySet<string>): Db {
  const guarded = (q: Queryable): Queryable => ({
    query: (sql, values) => {
      const text = typeof sql === 'string' ? sql : sql.text;
      const id = (typeof sql === 'string' ? values : sql.values)?.[0];
      if (text.startsWith('insert into stripe_events') && typeof id === 'string' && refuse.has(id))
        return Promise.reject(new Error('this event cannot be recorded'));
      return q.query(sql, values);
    },
    exec: (script) => q.exec(script),
  });
  return {
    ...guarded(db),
    kind: db.kind,
    tx: (fn) => db.tx((q) => fn(guarded(q))),
    close: () => db.close(),
  };
}

/**
 * PostgreSQL's text and jsonb refuse NUL (and jsonb unpaired surrogates). What Stripe signed is stored anyway,
 * one bad event never holds back the others, and our own API refuses such strings as invalid.
 */
describe.each(BACKENDS)('strings PostgreSQL cannot store, on %s', (backend) => {
  let ctx: TestContext;
  let admin: string;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { env: { STRIPE_WEBHOOK_SECRET: SECRET }, emulator: true });
    admin = await ctx.bearer('admin');
  });
  afterAll(() => ctx?.close());

  const deliver = (e: FixtureEvent | string) => {
    const { payload, header } = signed(e, SECRET);
    return ctx.app.inject({
      method: 'POST',
      url: '/webhooks/stripe',
      headers: { 'stripe-signature': header, 'content-type': 'application/json' },
      payload,
    });
  };
  const inboxRow = async (id: string) =>
    (
      await ctx.testDb.db.query<{ status: string; reason: string | null; raw_payload: string | null }>(
        'select status, reason, raw_payload from stripe_events where id = $1',
        [id],
      )
    ).rows[0];

  it('stores and applies a signed event with NUL and a lone surrogate in its strings', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.completed(fx, {
      customer_details: { email: 'buyer@example.com', name: `Ann${NUL}Lee \ud800` },
      metadata: { order_id: fx.id, [`note${NUL}`]: `a${NUL}b` },
    });
    const payload = JSON.stringify(e);
    expect(payload).toContain('\\u0000');

    const res = await deliver(payload);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().status).toBe('processed');
    expect(await getOrder(ctx.testDb.db, fx.id)).toMatchObject({ status: 'paid' });
    // What Stripe signed is kept, byte for byte, beside the payload that jsonb could hold.
    const row = await inboxRow(e.id);
    expect(row).toMatchObject({ status: 'done', raw_payload: payload });
  });

  it('records an event whose type holds NUL as ignored, never a 500', async () => {
    const e = stripeEvent(`charge.${NUL}refunded`, { id: 'ch_x', object: 'charge' });
    const res = await deliver(e);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().status).toBe('ignored');
    expect((await inboxRow(e.id))?.status).toBe('ignored');
  });

  it('records events of types named like Object.prototype members as ignored, not retried', async () => {
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const e = stripeEvent(type, { id: 'ch_proto', object: 'charge' });
      const res = await deliver(e);
      expect(res.json().status, type).toBe('ignored');
      expect(await inboxRow(e.id), type).toMatchObject({
        status: 'ignored',
        reason: `${type} events are not handled`,
      });
    }
  });

  it('reconciles past an event holding NUL and past one that fails, and applies the rest', async () => {
    // Events at the emulator that this database has never seen: a paid order of ours, a session with NUL in
    // its metadata, and a third that cannot be recorded here at all.
    const orderId = `ord_nul_${Date.now().toString(36)}`;
    const { sessionId } = await startCheckout(ctx, admin, { orderId, amount: 3000 });
    const foreign = (metadata: Record<string, string>) =>
      ctx.infra.stripe.checkout.sessions.create({
        mode: 'payment',
        success_url: 'https://shop.example/ok',
        line_items: [
          { price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'x' } }, quantity: 1 },
        ],
        metadata,
      });
    const other = await foreign({ note: `has${NUL}nul` });
    const third = await foreign({ note: 'plain' });
    const restoredDb = await createTestContext(backend, { env: { STRIPE_WEBHOOK_SECRET: SECRET } });
    try {
      await createOrderFor(
        restoredDb.testDb.db,
        { ...orderFixture(), id: orderId, sessionId, amount: 3000 },
        { withPaymentIntent: false },
      );
      for (const id of [sessionId, other.id, third.id])
        await ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${id}/complete`, {
          outcome: 'paid',
        });
      await until(async () => (await getOrder(ctx.testDb.db, orderId))?.status === 'paid');
      const listed = await ctx.infra.stripe.events.list({ type: 'checkout.session.completed', limit: 100 });
      const eventOf = (session: string) =>
        listed.data.find((e) => (e.data.object as { id: string }).id === session)!;
      const nulEvent = eventOf(other.id);
      const failing = eventOf(third.id);

      const restored = createModules({
        ...restoredDb.infra,
        db: refusingInserts(restoredDb.testDb.db, new Set([failing.id])),
        stripe: ctx.infra.stripe,
      }).stripeEvents;
      const summary = await restored.reconcile({ since: new Date(Date.now() - 120_000) });

      expect(await getOrder(restoredDb.testDb.db, orderId)).toMatchObject({
        status: 'paid',
        amount_paid: 3000,
      });
      const nulRow = (
        await restoredDb.testDb.db.query<{ status: string; raw_payload: string | null }>(
          'select status, raw_payload from stripe_events where id = $1',
          [nulEvent.id],
        )
      ).rows[0];
      expect(nulRow?.status).toBe('ignored');
      expect(nulRow?.raw_payload).toContain('has\\u0000nul');
      expect(summary.errors).toEqual([{ event_id: failing.id, error: 'this event cannot be recorded' }]);
    } finally {
      await restoredDb.close();
    }
  });

  it('refuses NUL in our own API strings with 400 validation_failed, storing nothing', async () => {
    const orderId = `ord_nulapi_${Date.now().toString(36)}`;
    const checkout = await ctx.app.inject({
      method: 'POST',
      url: '/v1/checkout/sessions',
      headers: { authorization: admin, 'idempotency-key': `nul-${orderId}` },
      payload: {
        order_id: orderId,
        currency: 'usd',
        customer_email: 'buyer@example.com',
        line_items: [{ name: `Poster${NUL}`, unit_amount: 1000, quantity: 1 }],
      },
    });
    expect(checkout.statusCode).toBe(400);
    expect(checkout.json().error).toMatchObject({
      code: 'validation_failed',
      details: { fields: { 'body.line_items.0.name': expect.any(String) } },
    });
    expect(await getOrder(ctx.testDb.db, orderId)).toBeNull();

    const refund = await ctx.app.inject({
      method: 'POST',
      url: `/v1/orders/${orderId}/refunds`,
      headers: { authorization: admin, 'idempotency-key': `nul-refund-${orderId}` },
      payload: { reason: `late${NUL}` },
    });
    expect(refund.statusCode).toBe(400);
    expect(refund.json().error).toMatchObject({
      code: 'validation_failed',
      details: { fields: { 'body.reason': expect.any(String) } },
    });
  });
});
