import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createOrderFor, events, orderFixture, signed } from '../helpers/stripe-events.js';

const SECRET = 'whsec_untrusted_input_suite';
const MIB = 1024 * 1024;

describe.each(BACKENDS)('untrusted input on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { env: { STRIPE_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(() => ctx?.close());

  it("refuses bodies over each route's limit with 413 payload_too_large", async () => {
    const admin = await ctx.bearer('admin');
    const api = await ctx.app.inject({
      method: 'POST',
      url: '/v1/checkout/sessions',
      headers: { authorization: admin, 'idempotency-key': 'too-large', 'content-type': 'application/json' },
      payload: JSON.stringify({ order_id: 'ord_big', padding: 'x'.repeat(300 * 1024) }),
    });
    expect(api.statusCode).toBe(413);
    expect(api.json().error.code).toBe('payload_too_large');
    // The webhook route takes up to 1 MiB (CONTRACT §3), and no more.
    const webhook = await ctx.app.inject({
      method: 'POST',
      url: '/webhooks/stripe',
      headers: {
        'stripe-signature': `t=${Math.floor(Date.now() / 1000)},v1=${'0'.repeat(64)}`,
        'content-type': 'application/json',
      },
      payload: Buffer.alloc(MIB + 1, 0x20),
    });
    expect(webhook.statusCode).toBe(413);
  });

  it('lets public routes ignore an Authorization header they do not use', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const { payload, header } = signed(events.completed(fx), SECRET);
    const bogus = { authorization: 'Bearer not-a-key-of-ours' };
    const webhook = await ctx.app.inject({
      method: 'POST',
      url: '/webhooks/stripe',
      headers: { ...bogus, 'stripe-signature': header, 'content-type': 'application/json' },
      payload,
    });
    expect(webhook.statusCode, webhook.body).toBe(200);
    for (const url of ['/healthz', '/readyz', '/checkout/cancel?order_id=ord_x'])
      expect((await ctx.app.inject({ method: 'GET', url, headers: bogus })).statusCode, url).toBe(200);
    // A session this service never stored: the page says so (404); it does not ask for a key.
    const page = await ctx.app.inject({
      method: 'GET',
      url: `/checkout/success?session_id=${fx.sessionId}`,
      headers: bogus,
    });
    expect(page.statusCode).toBe(404);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    // Routes that need a key still read it.
    const order = await ctx.app.inject({ method: 'GET', url: `/v1/orders/${fx.id}`, headers: bogus });
    expect(order.statusCode).toBe(401);
    expect(order.json().error.code).toBe('unauthenticated');
  });
});

describe.each(BACKENDS)('rate limits on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend, {
      env: {
        STRIPE_WEBHOOK_SECRET: SECRET,
        RATE_LIMIT_PER_KEY: '5',
        RATE_LIMIT_PER_ADDRESS: '12',
        RATE_LIMIT_WEBHOOK: '1000',
        // Every test context shares one Redis: a prefix of its own keeps its counters its own.
        REDIS_KEY_PREFIX: `payments:rate-${backend}-${Date.now().toString(36)}:`,
      },
    });
  });
  afterAll(() => ctx?.close());

  const orderRead = (bearer: string) =>
    ctx.app.inject({ method: 'GET', url: '/v1/orders/ord_missing', headers: { authorization: bearer } });

  it("answers 429 rate_limited with Retry-After past a key's limit, and keeps accepting webhooks", async () => {
    const service = await ctx.bearer('service');
    const statuses = [];
    for (let i = 0; i < 7; i++) statuses.push((await orderRead(service)).statusCode);
    expect(statuses).toEqual([404, 404, 404, 404, 404, 429, 429]);
    const refused = await orderRead(service);
    expect(refused.json().error.code).toBe('rate_limited');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    // Another key from the same address still has its own allowance.
    expect((await orderRead(await ctx.bearer('service'))).statusCode).toBe(404);

    // Stripe's deliveries are counted apart: the same address is over its API limit, yet they go through.
    for (let i = 0; i < 10; i++) {
      const fx = orderFixture();
      await createOrderFor(ctx.testDb.db, fx);
      const { payload, header } = signed(events.completed(fx), SECRET);
      const res = await ctx.app.inject({
        method: 'POST',
        url: '/webhooks/stripe',
        headers: { 'stripe-signature': header, 'content-type': 'application/json' },
        payload,
      });
      expect(res.statusCode, res.body).toBe(200);
    }
  });

  it('limits each client address, whether or not it sends a key, but never the probes', async () => {
    // The address's bucket already holds the requests above; unauthenticated ones count there too.
    let last = 0;
    for (let i = 0; i < 10; i++)
      last = (await ctx.app.inject({ method: 'GET', url: '/v1/orders/ord_x' })).statusCode;
    expect(last).toBe(429);
    for (let i = 0; i < 20; i++)
      expect((await ctx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });
});
