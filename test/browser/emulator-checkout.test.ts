import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStripeEmulator, startStripeEmulator } from '../../stripe-emulator/index.js';
import { startWebhookReceiver, type WebhookReceiver } from '../../stripe-emulator/testing.js';
import { browserTestsEnabled, launchBrowser } from '../helpers/browser.js';

/** A buyer in Chromium on the emulator's hosted Checkout page, landing back on the shop. */

/** The shop's pages that Checkout sends the buyer back to. */
async function startShop(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://shop');
    const title = url.pathname === '/ok' ? 'Thank you' : 'Your cart';
    const sessionId = (url.searchParams.get('session_id') ?? '').replace(/[^A-Za-z0-9_]/g, '');
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>${title}</title><h1>${title}</h1><p id="session">${sessionId}</p>`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

describe.skipIf(!browserTestsEnabled())('emulator checkout in a browser', () => {
  let browser: Browser;
  let emulator: RunningStripeEmulator;
  let receiver: WebhookReceiver;
  let shop: { url: string; close: () => Promise<void> };
  let stripe: Stripe;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    shop = await startShop();
    emulator = await startStripeEmulator({ port: 0, webhookUrl: receiver.url });
    stripe = new Stripe('sk_test_browser', { host: '127.0.0.1', port: emulator.port, protocol: 'http' });
    browser = await launchBrowser();
  });

  afterAll(async () => {
    await browser?.close();
    await emulator?.close();
    await receiver?.close();
    await shop?.close();
  });

  const createSession = () =>
    stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        {
          quantity: 2,
          price_data: { currency: 'usd', unit_amount: 2500, product_data: { name: 'T-shirt' } },
        },
        { quantity: 1, price_data: { currency: 'usd', unit_amount: 700, product_data: { name: 'Socks' } } },
      ],
      customer_email: 'browser@example.com',
      success_url: `${shop.url}/ok?session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${shop.url}/cart`,
    });

  it('pays by card, lands on success_url with the session id, and the signed webhook arrives', async () => {
    const session = await createSession();
    const page = await browser.newPage();
    try {
      await page.goto(session.url ?? '');
      await expect.poll(() => page.getByTestId('total').textContent()).toBe('$57.00');
      expect(await page.getByText('T-shirt × 2').count()).toBe(1);
      await page.getByRole('button', { name: 'Pay by card' }).click();
      await page.waitForURL(`${shop.url}/ok?**`);
      expect(new URL(page.url()).searchParams.get('session_id')).toBe(session.id);
      expect(await page.locator('#session').textContent()).toBe(session.id);
    } finally {
      await page.close();
    }

    const isCompletion = (r: WebhookReceiver['received'][number]) =>
      r.eventType === 'checkout.session.completed' && r.rawBody.includes(session.id);
    await receiver.waitFor((all) => all.some(isCompletion));
    const delivery = receiver.received.find(isCompletion);
    const event = stripe.webhooks.constructEvent(
      delivery?.rawBody ?? '',
      delivery?.signature ?? '',
      emulator.webhookSecret ?? '',
    );
    expect(event.type).toBe('checkout.session.completed');
    const completed = event.data.object as Stripe.Checkout.Session;
    expect(completed).toMatchObject({ id: session.id, status: 'complete', payment_status: 'paid' });
    expect(completed.customer_details?.email).toBe('browser@example.com');
  });

  it('a declined card shows the error and leaves the session open; cancel returns to the cart', async () => {
    const session = await createSession();
    const page = await browser.newPage();
    try {
      await page.goto(session.url ?? '');
      await page.getByRole('button', { name: 'Pay with a declined card' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('Your card was declined');
      expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
      await page.getByRole('button', { name: 'Cancel and go back' }).click();
      await page.waitForURL(`${shop.url}/cart`);
      expect(await page.locator('h1').textContent()).toBe('Your cart');
    } finally {
      await page.close();
    }
  });
});
