import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../../src/modules/orders/index.js';
import { createModules } from '../../src/modules.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { startCheckout } from '../helpers/checkout.js';
import { BACKENDS } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/services.js';
import { createOrderFor, events, type FixtureEvent, orderFixture, signed } from '../helpers/stripe-events.js';
import { until } from '../helpers/wait.js';

const SECRET = 'whsec_redis_markers_suite';

/**
 * PostgreSQL alone decides that an event is done (DESIGN §3). Redis's "processed" marker may only save work
 * where the inbox row agrees; these are the two ways it could disagree: a Redis shared by two deployments,
 * and a database restored from a backup while Redis kept its markers.
 */
describe.each(BACKENDS)('Redis markers against the inbox on %s', (backend) => {
  // Both sides on one Redis whatever the backend; PGlite would otherwise use in-process state.
  const env = { STRIPE_WEBHOOK_SECRET: SECRET, REDIS_URL: TEST_REDIS_URL };
  const prefix = `payments:shared-${backend}-${Date.now().toString(36)}:`;
  let first: TestContext;
  let second: TestContext;
  let ownPrefix: TestContext;

  beforeAll(async () => {
    // Two deployments told to share their keys (the worst case): only the inbox can keep them apart.
    first = await createTestContext(backend, { env: { ...env, REDIS_KEY_PREFIX: prefix }, emulator: true });
    second = await createTestContext(backend, { env: { ...env, REDIS_KEY_PREFIX: prefix } });
    ownPrefix = await createTestContext(backend, { env });
  });
  afterAll(async () => {
    await Promise.all([first?.close(), second?.close(), ownPrefix?.close()]);
  });

  const deliver = (ctx: TestContext, e: FixtureEvent, stripeEvents = ctx.modules.stripeEvents) => {
    const { payload, header } = signed(e, SECRET);
    return stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
  };
  const inboxRow = async (ctx: TestContext, id: string) =>
    (
      await ctx.testDb.db.query<{ status: string; attempts: number }>(
        'select status, attempts from stripe_events where id = $1',
        [id],
      )
    ).rows[0];

  it('lets two deployments on one Redis each apply the same event to its own order', async () => {
    const fx = orderFixture();
    await createOrderFor(first.testDb.db, fx);
    await createOrderFor(second.testDb.db, fx);
    const e = events.completed(fx);

    expect((await deliver(first, e)).status).toBe('processed');
    expect(await first.infra.kv.get(`stripe:event:${e.id}`)).not.toBeNull();
    // The second deployment finds the first one's marker under the same key, and applies the event anyway.
    expect((await deliver(second, e)).status).toBe('processed');
    for (const ctx of [first, second]) {
      expect(await getOrder(ctx.testDb.db, fx.id)).toMatchObject({ status: 'paid', amount_paid: fx.amount });
      expect(await inboxRow(ctx, e.id)).toMatchObject({ status: 'done' });
    }
    // Its marker now agrees with its own inbox, so a redelivery there is a plain duplicate.
    expect((await deliver(second, e)).status).toBe('duplicate');
  });

  it('keeps deployments apart in Redis by default: the prefix comes from the database identity', async () => {
    expect(ownPrefix.infra.redisKeyPrefix).toMatch(/^payments:[0-9a-f]{12}:$/);
    const other = await createTestContext(backend, { env });
    try {
      expect(other.infra.redisKeyPrefix).toMatch(/^payments:[0-9a-f]{12}:$/);
      expect(other.infra.redisKeyPrefix).not.toBe(ownPrefix.infra.redisKeyPrefix);
      const fx = orderFixture();
      await createOrderFor(ownPrefix.testDb.db, fx);
      const e = events.completed(fx);
      await deliver(ownPrefix, e);
      expect(await ownPrefix.infra.kv.get(`stripe:event:${e.id}`)).not.toBeNull();
      expect(await other.infra.kv.get(`stripe:event:${e.id}`)).toBeNull();
    } finally {
      await other.close();
    }
  });

  it('applies a redelivery to a database restored to before the event, while Redis kept its marker', async () => {
    // `first` applied the event; `second` stands for the same deployment restored from a backup taken before
    // it (same keys in Redis, the order still awaiting payment, the event never recorded).
    const fx = orderFixture();
    await createOrderFor(first.testDb.db, fx);
    await createOrderFor(second.testDb.db, fx);
    const e = events.completed(fx);
    await deliver(first, e);

    expect((await deliver(second, e)).status).toBe('processed');
    expect(await getOrder(second.testDb.db, fx.id)).toMatchObject({ status: 'paid' });
  });

  it('applies the event when reconciliation finds it missing from a restored database', async () => {
    // Paid through the emulator, applied by `first` (which leaves its markers in the shared Redis)...
    const admin = await first.bearer('admin');
    const orderId = `ord_restored_${Date.now().toString(36)}`;
    const { sessionId } = await startCheckout(first, admin, { orderId, amount: 4000 });
    await createOrderFor(
      second.testDb.db,
      { ...orderFixture(), id: orderId, sessionId, amount: 4000 },
      { withPaymentIntent: false },
    );
    await first.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${sessionId}/complete`, {
      outcome: 'paid',
    });
    await until(async () => (await getOrder(first.testDb.db, orderId))?.status === 'paid');

    // ...while `second`, restored to before it, never heard of the payment until it reads Stripe's events.
    const restored = createModules({ ...second.infra, stripe: first.infra.stripe }).stripeEvents;
    const summary = await restored.reconcile({ since: new Date(Date.now() - 60_000) });
    expect(summary.failed).toBe(0);
    expect(await getOrder(second.testDb.db, orderId)).toMatchObject({ status: 'paid', amount_paid: 4000 });
  });

  it('counts every claimed try, so an event another worker holds is dead-lettered at the limit', async () => {
    const fx = orderFixture();
    await createOrderFor(first.testDb.db, fx);
    const e = events.completed(fx);
    // The event's lock is held elsewhere (a stuck holder) for longer than all the tries below.
    const holder = await first.infra.lock.acquire(`stripe:event:${e.id}`, 60_000);
    expect(holder).not.toBeNull();
    const impatient = createModules(first.infra, {
      stripeEvents: {
        firstTryLeaseMs: 0,
        retry: { jitter: 'full', baseMs: 1, capMs: 1, maxAttempts: 3 },
      },
    }).stripeEvents;
    try {
      expect((await deliver(first, e, impatient)).status).toBe('queued');
      for (let i = 0; i < 10 && (await inboxRow(first, e.id))?.status !== 'failed'; i++) {
        await new Promise((r) => setTimeout(r, 5));
        await impatient.applyDue();
      }
      expect(await inboxRow(first, e.id)).toMatchObject({ status: 'failed', attempts: 3 });
    } finally {
      await first.infra.lock.release(`stripe:event:${e.id}`, holder!);
    }
  });
});
