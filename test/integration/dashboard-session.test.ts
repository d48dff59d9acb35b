import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';

/** The dashboard's sign-in: which keys open a session, the cookie's flags, and what ends a session. */

const cookiesOf = (setCookie: string | string[] | undefined) =>
  (Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [])
    .map((c) => c.split(';')[0]!)
    .join('; ');

/** The sign-in form's token and the CSRF cookie that goes with it. */
async function signInForm(ctx: TestContext) {
  const page = await ctx.app.inject({ url: '/dashboard/sign-in' });
  const token = /name="_csrf" value="([^"]+)"/.exec(page.body)![1]!;
  return { token, cookie: cookiesOf(page.headers['set-cookie']) };
}

async function signIn(ctx: TestContext, bearer: string) {
  const form = await signInForm(ctx);
  return ctx.app.inject({
    method: 'POST',
    url: '/dashboard/sign-in',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: form.cookie },
    payload: new URLSearchParams({ _csrf: form.token, api_key: bearer.replace('Bearer ', '') }).toString(),
  });
}

describe.each(BACKENDS)('dashboard sessions on %s', (backend) => {
  let ctx: TestContext;
  let https: TestContext;

  beforeAll(async () => {
    ctx = await createTestContext(backend);
    https = await createTestContext(backend, { env: { PUBLIC_URL: 'https://payments.shop.example' } });
  });
  afterAll(async () => {
    await ctx?.close();
    await https?.close();
  });

  it('opens an httpOnly, SameSite=Strict session for an admin key, Secure behind https', async () => {
    const res = await signIn(ctx, await ctx.bearer('admin'));
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe('/dashboard');
    const session = [res.headers['set-cookie']].flat().find((c) => c?.startsWith('ps_dashboard='))!;
    expect(session).toMatch(/HttpOnly/i);
    expect(session).toMatch(/SameSite=Strict/i);
    expect(session).not.toMatch(/Secure/i);
    const page = await ctx.app.inject({ url: '/dashboard', headers: { cookie: cookiesOf(session) } });
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('<h1>Admin</h1>');

    const secure = await signIn(https, await https.bearer('admin'));
    const secureCookie = [secure.headers['set-cookie']].flat().find((c) => c?.startsWith('ps_dashboard='))!;
    expect(secureCookie).toMatch(/; Secure/i);
  });

  it('refuses unknown and service keys with a stable code and opens no session', async () => {
    for (const [key, status, code] of [
      ['Bearer psk_unknown', 401, 'unauthenticated'],
      [await ctx.bearer('service'), 403, 'forbidden'],
    ] as const) {
      const res = await signIn(ctx, key);
      expect(res.statusCode).toBe(status);
      expect(res.body).toContain(`data-code="${code}"`);
      expect([res.headers['set-cookie']].flat().some((c) => c?.startsWith('ps_dashboard='))).toBe(false);
    }
  });

  it('ends the session when its key is revoked, and refuses a session cookie it did not issue', async () => {
    const admin = await ctx.bearer('admin');
    const res = await signIn(ctx, admin);
    const cookie = cookiesOf(res.headers['set-cookie']);
    expect((await ctx.app.inject({ url: '/dashboard', headers: { cookie } })).statusCode).toBe(200);
    const keyId = (
      await ctx.testDb.db.query<{ id: string }>(
        'select id from api_keys where revoked_at is null order by created_at desc limit 1',
      )
    ).rows[0]!.id;
    await ctx.testDb.db.query('update api_keys set revoked_at = now() where id = $1', [keyId]);
    const after = await ctx.app.inject({ url: '/dashboard', headers: { cookie } });
    expect(after.statusCode).toBe(302);
    expect(after.headers.location).toBe('/dashboard/sign-in');
    const forged = await ctx.app.inject({
      url: '/dashboard',
      headers: { cookie: 'ps_dashboard=made-up.value' },
    });
    expect(forged.statusCode).toBe(302);
  });
});
