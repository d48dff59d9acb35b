import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { browserTestsEnabled, launchBrowser } from '../helpers/browser.js';
import { payOnEmulator, screenshot, signIn, watchedPage } from '../helpers/pages.js';
import { createAffiliate, referredCheckout } from '../helpers/referrals.js';

/**
 * The storefront demo and the dashboard in Chromium, against the real service (PGlite, the embedded emulator
 * and its signed webhooks): a referred buyer pays; the affiliate sees the commission; an admin clears a held
 * commission, pays out and refunds; forms from elsewhere and signed-out browsers are refused.
 */
interface Commission {
  id: string;
  order_id: string;
  status: string;
  entries: Array<{ type: string }>;
}

describe.skipIf(!browserTestsEnabled())('storefront and dashboard in a browser', () => {
  let ctx: TestContext;
  let browser: Browser;
  let admin: string;
  let alice: { id: string; key: string };
  let bob: { id: string; key: string };
  let bobOrder: string;
  let offsetMs = 0;
  const errors: string[] = [];
  const api = async <T = Record<string, unknown>>(url: string) =>
    (await ctx.app.inject({ url, headers: { authorization: admin } })).json() as T;
  const commissionsOf = async (affiliateId: string) =>
    (await api<{ data: Commission[] }>(`/v1/commissions?affiliate_id=${affiliateId}&limit=100`)).data;
  const orderOf = (id: string) => api(`/v1/orders/${id}`);
  const affiliateCount = async () => (await api<{ data: unknown[] }>('/v1/affiliates?limit=100')).data.length;

  beforeAll(async () => {
    ctx = await createTestContext('pglite', {
      emulator: true,
      modules: { now: () => new Date(Date.now() + offsetMs) },
    });
    admin = await ctx.bearer('admin');
    alice = await createAffiliate(ctx, admin, ['ALICEB']);
    bob = await createAffiliate(ctx, admin, ['BOBB']);
    // Bob's own referred, paid order: what Alice must never see.
    const fx = await referredCheckout(ctx, await ctx.bearer('service'), { code: 'BOBB', amount: 3100 });
    bobOrder = fx.id;
    await payOnEmulator(ctx.infra.emulator!.url, fx.sessionId);
    for (let i = 0; i < 300 && (await orderOf(bobOrder)).status !== 'paid'; i++) await sleep(50);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await ctx?.close();
  });

  it('a buyer follows a referral link, pays on the hosted page and sees the order paid', async () => {
    const page = await watchedPage(browser, errors, { width: 390, height: 844 });
    await page.goto(`${ctx.url}/r/ALICEB`);
    await page.waitForURL(`${ctx.url}/?ref=ALICEB`);
    // Without ?ref the cookie alone still attributes the visit.
    await page.goto(`${ctx.url}/`);
    expect(await page.getByTestId('attributed').locator('[data-code]').getAttribute('data-code')).toBe(
      'ALICEB',
    );
    expect(await page.getByLabel('Referral code').inputValue()).toBe('ALICEB');
    await screenshot(page, 'storefront');
    await page.getByLabel(/Poster/).check();
    await page.getByRole('button', { name: 'Checkout' }).click();
    await page.getByRole('button', { name: /pay by card/i }).click();
    await page.waitForURL(/\/shop\/thanks\?order_id=ord_demo_/);
    const status = page.locator('#order-status');
    await expect.poll(() => status.getAttribute('data-status'), { timeout: 15_000 }).toBe('paid');
    await screenshot(page, 'storefront-paid');
    const orderId = new URL(page.url()).searchParams.get('order_id')!;
    const order = await orderOf(orderId);
    expect(order).toMatchObject({ status: 'paid', amount_paid: 4000, currency: 'usd' });
    expect(order.referral).toMatchObject({ code: 'ALICEB', affiliate_id: alice.id });
    await page.close();
  });

  it('the affiliate sees the commission in the chart and the ledger, and nothing of another affiliate', async () => {
    const page = await watchedPage(browser, errors);
    await signIn(page, ctx.url, alice.key);
    const chart = page.getByTestId('earnings-chart');
    await expect.poll(() => chart.getAttribute('data-rendered')).toBe('true');
    expect(Number(await chart.getAttribute('data-points'))).toBeGreaterThan(0);
    expect(await page.locator('#earnings-chart canvas').count()).toBeGreaterThan(0);
    const [commission] = await commissionsOf(alice.id);
    expect(await page.locator(`[data-testid=ledger] tr[data-entry=accrual]`).count()).toBe(1);
    expect(await page.getByTestId('ledger').textContent()).toContain(commission!.id);
    expect(await page.locator('[data-clicks]').getAttribute('data-clicks')).toBe('1');
    const text = (await page.content()) ?? '';
    for (const other of [bob.id, 'BOBB', bobOrder]) expect(text).not.toContain(other);
    const csv = await page.request.get(`${ctx.url}/dashboard/export.csv`);
    expect(csv.status()).toBe(200);
    expect(await csv.text()).toContain(commission!.id);
    expect(await csv.text()).not.toContain(bob.id);
    await screenshot(page, 'dashboard-affiliate');
    await page.close();
  });

  it('an admin clears a held commission, pays it out once and refunds an order', async () => {
    const mine = await api<{ email: string }>(`/v1/affiliates/${alice.id}`);
    // Alice buying through her own code: the self-referral guard holds the commission.
    const held = await referredCheckout(ctx, await ctx.bearer('service'), {
      code: 'ALICEB',
      amount: 2000,
      buyerEmail: mine.email,
    });
    await payOnEmulator(ctx.infra.emulator!.url, held.sessionId);
    await expect
      .poll(async () => (await commissionsOf(alice.id)).find((c) => c.order_id === held.id)?.status, {
        timeout: 15_000,
      })
      .toBe('on_hold');
    const heldId = (await commissionsOf(alice.id)).find((c) => c.order_id === held.id)!.id;

    const page = await watchedPage(browser, errors);
    await signIn(page, ctx.url, admin);
    await screenshot(page, 'dashboard-admin');
    const card = page.locator(`[data-testid=review-queue] li[data-commission="${heldId}"]`);
    await card.getByRole('button', { name: 'Approve' }).click();
    await page.waitForURL(/notice=/);
    expect((await api(`/v1/commissions/${heldId}`)).status).toBe('pending');

    // Past the hold: the approval job approves both, and the admin pays them out.
    offsetMs = 31 * 86_400_000;
    expect(await ctx.modules.referrals.approveDue()).toBeGreaterThanOrEqual(2);
    await page.goto(`${ctx.url}/dashboard`);
    const row = page.locator(`[data-testid=payouts-due] tr[data-affiliate="${alice.id}"]`);
    const fields = Object.fromEntries(
      await row.locator('input[type=hidden]').evaluateAll((inputs) =>
        inputs.map((i) => {
          const input = i as unknown as { name: string; value: string };
          return [input.name, input.value];
        }),
      ),
    ) as Record<string, string>;
    await row.getByRole('button', { name: /^Pay/ }).click();
    await page.waitForURL(/notice=/);
    // The same form sent again (a double submit) replays the first payout instead of making a second.
    const again = await page.request.post(`${ctx.url}/dashboard/payouts`, {
      form: fields as Record<string, string>,
    });
    expect(again.url()).toMatch(/notice=Payout/);
    const paid = await commissionsOf(alice.id);
    expect(paid.map((c) => c.status)).toEqual(['paid', 'paid']);
    for (const c of paid) expect(c.entries.filter((e) => e.type === 'payout')).toHaveLength(1);

    await page.getByLabel('Order id').fill(held.id);
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.waitForURL(`${ctx.url}/dashboard/orders?id=${held.id}`);
    expect(await page.getByTestId('order-status').textContent()).toBe('paid');
    await page.getByLabel(/Amount in minor units/).fill('500');
    await page.getByRole('button', { name: 'Refund' }).click();
    await page.waitForURL(/notice=Refund/);
    await expect.poll(async () => (await orderOf(held.id)).amount_refunded, { timeout: 15_000 }).toBe(500);
    expect((await orderOf(held.id)).status).toBe('partially_refunded');
    await page.reload();
    await screenshot(page, 'dashboard-order');
    await page.close();
  });

  it('refuses a form without the token or from another origin, and changes nothing', async () => {
    const context: BrowserContext = await browser.newContext();
    const page: Page = await watchedPage(context, errors);
    await signIn(page, ctx.url, admin);
    const before = await affiliateCount();
    const form = { name: 'Mallory', email: 'mallory@example.com', basis_points: '9000' };
    const noToken = await page.request.post(`${ctx.url}/dashboard/affiliates`, { form, maxRedirects: 0 });
    expect(noToken.status()).toBe(403);
    expect((await noToken.json()).error.code).toBe('csrf_invalid');
    const token = await page.locator('input[name=_csrf]').first().inputValue();
    const foreign = await page.request.post(`${ctx.url}/dashboard/affiliates`, {
      form: { ...form, _csrf: token },
      headers: { origin: 'https://evil.example' },
      maxRedirects: 0,
    });
    expect(foreign.status()).toBe(403);
    expect((await foreign.json()).error.code).toBe('csrf_invalid');
    expect(await affiliateCount()).toBe(before);
    await context.close();
  });

  it('sends a signed-out browser to the sign-in page, and signs out', async () => {
    const context = await browser.newContext();
    const page = await watchedPage(context, errors);
    for (const path of ['/dashboard', `/dashboard/orders?id=${bobOrder}`, '/dashboard/export.csv']) {
      const res = await page.request.get(`${ctx.url}${path}`, { maxRedirects: 0 });
      expect(res.status()).toBe(302);
      expect(res.headers().location).toBe('/dashboard/sign-in');
    }
    await page.goto(`${ctx.url}/dashboard`);
    expect(new URL(page.url()).pathname).toBe('/dashboard/sign-in');
    await screenshot(page, 'dashboard-sign-in');
    // An unknown key: 401 and the sign-in page again, naming the code (asked outside the watched page,
    // where Chromium would log the 401 as a failed resource).
    const token = await page.locator('input[name=_csrf]').inputValue();
    const refused = await page.request.post(`${ctx.url}/dashboard/sign-in`, {
      form: { _csrf: token, api_key: 'psk_not_a_key' },
      maxRedirects: 0,
    });
    expect(refused.status()).toBe(401);
    expect(await refused.text()).toContain('data-code="unauthenticated"');
    await signIn(page, ctx.url, alice.key);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${ctx.url}/dashboard/sign-in`);
    const after = await page.request.get(`${ctx.url}/dashboard`, { maxRedirects: 0 });
    expect(after.status()).toBe(302);
    await context.close();
  });

  it('saw no console error and no uncaught exception on any page', () => {
    expect(errors).toEqual([]);
  });
});
