import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { browserTestsEnabled, launchBrowser } from '../helpers/browser.js';
import { startCheckout } from '../helpers/checkout.js';
import { BACKENDS } from '../helpers/db.js';

/**
 * A buyer's whole journey through the service: the shop asks our API for a Checkout Session, the buyer pays
 * on the hosted page in Chromium and lands on our default success page, which shows the order paid only once
 * the signed webhook has been applied.
 */
describe.skipIf(!browserTestsEnabled()).each(BACKENDS)(
  'checkout through the service in a browser on %s',
  (backend) => {
    let ctx: TestContext;
    let browser: Browser;

    beforeAll(async () => {
      ctx = await createTestContext(backend, { emulator: true });
      browser = await launchBrowser();
    });
    afterAll(async () => {
      await browser?.close();
      await ctx?.close();
    });

    const checkout = async (orderId: string) =>
      startCheckout(ctx, await ctx.bearer('service'), {
        orderId,
        currency: 'eur',
        amount: 1250,
        quantity: 2,
        name: 'Mug',
      });

    it('pays by card and shows the order paid on the success page', async () => {
      const orderId = `ord_browser_${backend}_paid`;
      const session = await checkout(orderId);
      const page = await browser.newPage();
      await page.goto(session.url);
      await page.getByRole('button', { name: /pay by card/i }).click();
      await page.waitForURL(`${ctx.url}/checkout/success?session_id=${session.sessionId}`);
      // The redirect may beat the webhook: the page shows "paid" only once the webhook has been applied.
      await expect
        .poll(
          async () => {
            await page.reload();
            return page.locator('[data-status]').getAttribute('data-status');
          },
          { timeout: 15_000 },
        )
        .toBe('paid');
      const order = await ctx.app.inject({
        url: `/v1/orders/${orderId}`,
        headers: { authorization: await ctx.bearer('admin') },
      });
      expect(order.json()).toMatchObject({ status: 'paid', amount_paid: 2500, currency: 'eur' });
      expect(order.json().history.map((h: { to: string }) => h.to)).toEqual(['awaiting_payment', 'paid']);
      await page.close();
    });

    it('cancels back to the cancel page and leaves the order unpaid', async () => {
      const orderId = `ord_browser_${backend}_cancel`;
      const session = await checkout(orderId);
      const page = await browser.newPage();
      await page.goto(session.url);
      await page.getByRole('button', { name: /cancel/i }).click();
      await page.waitForURL(new RegExp(`^${ctx.url}/checkout/cancel`));
      expect(await page.locator('h1').textContent()).toBe('Checkout cancelled');
      const order = await ctx.app.inject({
        url: `/v1/orders/${orderId}`,
        headers: { authorization: await ctx.bearer('admin') },
      });
      expect(order.json().status).toBe('awaiting_payment');
      await page.close();
    });
  },
);
