import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatAmount, minorUnitExponent } from './currency.js';
import { type RunningStripeEmulator, startStripeEmulator } from './index.js';

/**
 * The hosted Checkout page over plain HTTP, as a browser without JavaScript would use it (the browser test
 * in test/browser drives it in Chromium). Sessions are made and read back with the official SDK.
 */

let emulator: RunningStripeEmulator;
let stripe: Stripe;

beforeAll(async () => {
  emulator = await startStripeEmulator({ port: 0 });
  stripe = new Stripe('sk_test_page', { host: '127.0.0.1', port: emulator.port, protocol: 'http' });
});

afterAll(async () => {
  await emulator?.close();
});

function createSession(overrides: Partial<Stripe.Checkout.SessionCreateParams> = {}) {
  return stripe.checkout.sessions.create({
    mode: 'payment',
    line_items: [
      { quantity: 2, price_data: { currency: 'usd', unit_amount: 2500, product_data: { name: 'T-shirt' } } },
      { quantity: 1, price_data: { currency: 'usd', unit_amount: 700, product_data: { name: 'Socks' } } },
    ],
    success_url: 'https://shop.example/ok?session_id={CHECKOUT_SESSION_ID}',
    cancel_url: 'https://shop.example/cart',
    ...overrides,
  });
}

function post(url: string, form: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    body: new URLSearchParams(form),
    redirect: 'manual',
  });
}

const text = (html: string) => html.replace(/\s+/g, ' ');

describe('hosted checkout page', () => {
  it('shows the line items and the total', async () => {
    const session = await createSession();
    const res = await fetch(session.url ?? '');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/html');
    const html = text(await res.text());
    expect(html).toContain('T-shirt × 2');
    expect(html).toContain('Socks × 1');
    expect(html).toContain('$50.00');
    expect(html).toContain('$57.00');
    for (const label of [
      'Pay by card',
      'Pay by bank debit (delayed)',
      'Pay with a declined card',
      'Cancel',
    ]) {
      expect(html).toContain(label);
    }
  });

  it('formats totals in the currency minor unit (zero- and three-decimal currencies)', async () => {
    const item = (currency: string, unitAmount: number) => ({
      quantity: 1,
      price_data: { currency, unit_amount: unitAmount, product_data: { name: 'Thing' } },
    });
    const yen = await createSession({ line_items: [item('jpy', 5000)] });
    expect(text(await (await fetch(yen.url ?? '')).text())).toContain('¥5,000');
    const dinar = await createSession({ line_items: [item('kwd', 1500)] });
    expect(text(await (await fetch(dinar.url ?? '')).text())).toMatch(/KWD\s1\.500/);
  });

  it('escapes what the merchant wrote', async () => {
    const session = await createSession({
      line_items: [
        {
          quantity: 1,
          price_data: {
            currency: 'usd',
            unit_amount: 100,
            product_data: { name: '<img src=x onerror=alert(1)>' },
          },
        },
      ],
    });
    const html = await (await fetch(session.url ?? '')).text();
    expect(html).not.toContain('<img src=x');
    expect(html).toContain('&#60;img src=x onerror=alert(1)&#62;');
  });

  it('pay by card redirects to success_url with the session id, paid', async () => {
    const session = await createSession();
    const res = await post(`${session.url}/pay`, {
      action: 'card',
      email: 'page@example.com',
      card_number: '4242 4242 4242 4242',
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`https://shop.example/ok?session_id=${session.id}`);
    const paid = await stripe.checkout.sessions.retrieve(session.id, {
      expand: ['payment_intent.latest_charge'],
    });
    expect(paid).toMatchObject({ status: 'complete', payment_status: 'paid' });
    expect(paid.customer_details?.email).toBe('page@example.com');
    const charge = (paid.payment_intent as Stripe.PaymentIntent).latest_charge as Stripe.Charge;
    expect(charge.payment_method_details?.card?.last4).toBe('4242');

    const other = await createSession();
    await post(`${other.url}/pay`, { action: 'card', card_number: '4242424242424242' });
    const otherPaid = await stripe.checkout.sessions.retrieve(other.id, {
      expand: ['payment_intent.latest_charge'],
    });
    const otherCharge = (otherPaid.payment_intent as Stripe.PaymentIntent).latest_charge as Stripe.Charge;
    expect(otherCharge.payment_method_details?.card?.fingerprint).toBe(
      charge.payment_method_details?.card?.fingerprint,
    );

    const page = text(await (await fetch(`${emulator.url}/checkout/${session.id}`)).text());
    expect(page).toContain('is paid');
  });

  it('a declined card stays on the page with the session open', async () => {
    const session = await createSession();
    const res = await post(`${session.url}/pay`, { action: 'declined' });
    expect(res.status).toBe(402);
    expect(await res.text()).toContain('Your card was declined');
    const open = await stripe.checkout.sessions.retrieve(session.id);
    expect(open.status).toBe('open');
    expect((await stripe.paymentIntents.retrieve(String(open.payment_intent))).status).toBe(
      'requires_payment_method',
    );

    const typed = await post(`${session.url}/pay`, { action: 'card', card_number: '4000 0000 0000 0002' });
    expect(typed.status).toBe(402);
  });

  it('pay by a delayed method redirects to success_url with the payment processing', async () => {
    const session = await createSession();
    const res = await post(`${session.url}/pay`, { action: 'delayed' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain(session.id);
    const after = await stripe.checkout.sessions.retrieve(session.id);
    expect(after).toMatchObject({ status: 'complete', payment_status: 'unpaid' });
    expect((await stripe.paymentIntents.retrieve(String(after.payment_intent))).status).toBe('processing');
  });

  it('cancel goes back to cancel_url and leaves the session open', async () => {
    const session = await createSession();
    const res = await post(`${session.url}/cancel`, {});
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('https://shop.example/cart');
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('open');
  });

  it('an expired session cannot be paid; an unknown one is not found', async () => {
    const session = await createSession();
    const url = session.url ?? '';
    await stripe.checkout.sessions.expire(session.id);
    expect(text(await (await fetch(url)).text())).toContain('has expired');
    const res = await post(`${url}/pay`, { action: 'card' });
    expect(res.status).toBe(409);
    expect((await stripe.checkout.sessions.retrieve(session.id)).status).toBe('expired');
    expect((await fetch(`${emulator.url}/checkout/cs_test_unknown`)).status).toBe(404);
  });
});

describe('currency formatting', () => {
  it('knows which currencies have zero, two or three decimals', () => {
    expect(minorUnitExponent('jpy')).toBe(0);
    expect(minorUnitExponent('KRW')).toBe(0);
    expect(minorUnitExponent('usd')).toBe(2);
    expect(minorUnitExponent('kwd')).toBe(3);
    expect(formatAmount(1999, 'usd')).toBe('$19.99');
    expect(formatAmount(1999, 'jpy')).toBe('¥1,999');
    expect(formatAmount(1999, 'bhd').replace(/\s/g, ' ')).toBe('BHD 1.999');
  });
});
