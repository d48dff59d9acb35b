import { expect } from 'vitest';
import type { TestContext } from './app.js';

export interface StartedCheckout {
  orderId: string;
  sessionId: string;
  url: string;
}

/**
 * `POST /v1/checkout/sessions` as the shop calls it: one line item of `amount`, a fresh Idempotency-Key
 * derived from the order, and a 201 asserted.
 */
export async function startCheckout(
  ctx: TestContext,
  bearer: string,
  opts: { orderId: string; amount?: number; quantity?: number; currency?: string; name?: string },
): Promise<StartedCheckout> {
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/checkout/sessions',
    headers: { authorization: bearer, 'idempotency-key': `checkout-${opts.orderId}-${opts.amount ?? 5000}` },
    payload: {
      order_id: opts.orderId,
      currency: opts.currency ?? 'usd',
      customer_email: 'buyer@example.com',
      line_items: [
        { name: opts.name ?? 'Poster', unit_amount: opts.amount ?? 5000, quantity: opts.quantity ?? 1 },
      ],
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  const session = res.json() as { id: string; url: string };
  return { orderId: opts.orderId, sessionId: session.id, url: session.url };
}

/** Holds the emulator's webhooks back (delivery off) while `fn` runs, so a test delivers what it names. */
export async function withoutDelivery<T>(ctx: TestContext, fn: () => Promise<T>): Promise<T> {
  const endpoints = (await ctx.infra.stripe.webhookEndpoints.list()).data;
  for (const e of endpoints) await ctx.infra.stripe.webhookEndpoints.update(e.id, { disabled: true });
  try {
    return await fn();
  } finally {
    for (const e of endpoints) await ctx.infra.stripe.webhookEndpoints.update(e.id, { disabled: false });
  }
}
