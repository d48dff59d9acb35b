import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/app.js';

/**
 * The storefront demo exists only on the embedded defaults: in production (a database URL, a Stripe key)
 * `/` and its checkout are not routes at all, while the dashboard is served in every mode.
 */
describe('the storefront demo only in demo mode', () => {
  let demo: TestContext;
  let production: TestContext;

  beforeAll(async () => {
    demo = await createTestContext('pglite');
    production = await createTestContext('pglite', {
      env: {
        NODE_ENV: 'production',
        DATABASE_URL: 'postgres://payments@db.invalid:5432/payments',
        STRIPE_SECRET_KEY: 'sk_test_production_mode_check',
        STRIPE_WEBHOOK_SECRET: 'whsec_productionmodecheck',
        REFERRAL_IP_SALT: 'a-salt-of-sixteen-or-more',
      },
    });
  });
  afterAll(async () => {
    await demo?.close();
    await production?.close();
  });

  it('serves the shop and its status endpoint with the embedded defaults', async () => {
    const shop = await demo.app.inject({ url: '/' });
    expect(shop.statusCode).toBe(200);
    expect(shop.body).toContain('Demo shop');
    const unknown = await demo.app.inject({ url: '/shop/orders/ord_demo_AAAAAAAAAAAAAAAA/status' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('not_found');
  });

  it('takes no price from the browser: a posted amount is ignored, an unknown product refused', async () => {
    const refused = await demo.app.inject({
      method: 'POST',
      url: '/shop/checkout',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'product=yacht&quantity=1&email=buyer%40example.com&unit_amount=1',
    });
    expect(refused.statusCode).toBe(303);
    expect(refused.headers.location).toBe('/?error=validation_failed');
    const foreign = await demo.app.inject({
      method: 'POST',
      url: '/shop/checkout',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'https://evil.example' },
      payload: 'product=mug&quantity=1&email=buyer%40example.com',
    });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json().error.code).toBe('csrf_invalid');
  });

  it('serves no storefront and no demo routes in production, but the dashboard', async () => {
    for (const url of ['/', '/shop/thanks?order_id=ord_demo_AAAAAAAAAAAAAAAA']) {
      const res = await production.app.inject({ url });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    const post = await production.app.inject({ method: 'POST', url: '/shop/checkout', payload: {} });
    expect(post.statusCode).toBe(404);
    expect((await production.app.inject({ url: '/dashboard/sign-in' })).statusCode).toBe(200);
    expect((await production.app.inject({ url: '/dashboard' })).headers.location).toBe('/dashboard/sign-in');
  });
});

describe('pages are not API', () => {
  it('leaves the dashboard, the storefront and the assets out of the OpenAPI document', async () => {
    const ctx = await createTestContext('pglite');
    try {
      const paths = Object.keys((await ctx.app.inject({ url: '/openapi.json' })).json().paths);
      expect(paths).toContain('/v1/payouts');
      expect(paths.filter((p) => /^\/(dashboard|shop|assets)|^\/$/.test(p))).toEqual([]);
    } finally {
      await ctx.close();
    }
  });
});
