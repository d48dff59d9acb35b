import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, revokeKeysNamed } from '../../src/modules/auth/index.js';
import { AppError } from '../../src/shared/errors.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';

describe.each(BACKENDS)('foundation on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend, {
      extraRoutes: [
        async (app) => {
          app.get('/test/boom', async () => {
            throw new Error('secret internals: password=hunter2');
          });
          app.get('/test/app-error', async () => {
            throw new AppError(409, 'order_already_paid', 'paid');
          });
          app.get(
            '/test/admin',
            { onRequest: (await import('../../src/modules/auth/auth.plugin.js')).requireRole('admin') },
            async () => ({ ok: true }),
          );
        },
      ],
    });
  });
  afterAll(() => ctx?.close());

  it('answers /healthz and /readyz', async () => {
    const health = await ctx.app.inject('/healthz');
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    // Readiness is a probe that load balancers poll; on a loaded machine one answer may come late.
    let ready = await ctx.app.inject('/readyz');
    for (let i = 0; i < 20 && ready.statusCode !== 200; i++) {
      await new Promise((r) => setTimeout(r, 250));
      ready = await ctx.app.inject('/readyz');
    }
    expect(ready.statusCode).toBe(200);
    expect(ready.json().checks.database).toBe('ok');
    if (backend === 'postgres') expect(ready.json().checks.redis).toBe('ok');
  });

  it('gives unknown routes 404 not_found in the error shape', async () => {
    const res = await ctx.app.inject('/v1/nothing-here');
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });

  it('turns an unexpected exception into 500 internal_error without internals', async () => {
    const res = await ctx.app.inject('/test/boom');
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({ error: { code: 'internal_error', message: 'internal error' } });
    expect(res.body).not.toContain('hunter2');
    expect(res.body).not.toContain('at ');
  });

  it('answers a malformed URL with 400 validation_failed in the error shape', async () => {
    const res = await ctx.app.inject('/v1/orders/%E0%A4%A');
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('validation_failed');
  });

  it('checks the key before the body: no key gets 401 and a wrong role 403, whatever the body', async () => {
    const anonymous = await ctx.app.inject({ method: 'POST', url: '/v1/checkout/sessions', payload: {} });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.json().error.code).toBe('unauthenticated');
    const affiliate = await ctx.app.inject({
      method: 'POST',
      url: '/v1/orders/bad%20id/refunds',
      headers: { authorization: await ctx.bearer('service') },
      payload: { amount: -1 },
    });
    expect(affiliate.statusCode).toBe(403);
    expect(affiliate.json().error.code).toBe('forbidden');
  });

  it('passes an AppError through with its status and code', async () => {
    const res = await ctx.app.inject('/test/app-error');
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('order_already_paid');
  });

  it('authenticates keys and checks roles', async () => {
    expect((await ctx.app.inject('/test/admin')).json().error.code).toBe('unauthenticated');
    const unknown = await ctx.app.inject({
      url: '/test/admin',
      headers: { authorization: 'Bearer psk_nope' },
    });
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().error.code).toBe('unauthenticated');
    const service = await ctx.app.inject({
      url: '/test/admin',
      headers: { authorization: await ctx.bearer('service') },
    });
    expect(service.statusCode).toBe(403);
    expect(service.json().error.code).toBe('forbidden');
    const admin = await ctx.app.inject({
      url: '/test/admin',
      headers: { authorization: await ctx.bearer('admin') },
    });
    expect(admin.statusCode).toBe(200);
  });

  it('revokes keys by label, so a restart leaves one working demo key', async () => {
    const earlier = await createKey(ctx.testDb.db, { role: 'admin', name: 'demo' });
    expect(await revokeKeysNamed(ctx.testDb.db, 'demo')).toBe(1);
    const later = await createKey(ctx.testDb.db, { role: 'admin', name: 'demo' });
    const status = async (key: string) =>
      (await ctx.app.inject({ url: '/test/admin', headers: { authorization: `Bearer ${key}` } })).statusCode;
    expect(await status(earlier.key)).toBe(401);
    expect(await status(later.key)).toBe(200);
  });

  it('stores only the hash of a key', async () => {
    const bearer = await ctx.bearer('admin');
    const key = bearer.slice('Bearer '.length);
    const { rows } = await ctx.testDb.db.query<{ key_hash: string }>('select key_hash from api_keys');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.key_hash.includes(key))).toBe(false);
  });

  it('publishes OpenAPI and Prometheus metrics', async () => {
    const openapi = await ctx.app.inject('/openapi.json');
    expect(openapi.statusCode).toBe(200);
    expect(openapi.json().openapi).toMatch(/^3\./);
    expect(Object.keys(openapi.json().paths)).toContain('/healthz');
    const docs = await ctx.app.inject('/docs/');
    expect(docs.statusCode).toBe(200);
    const metrics = await ctx.app.inject('/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('webhook_events_received_total');
  });
});
