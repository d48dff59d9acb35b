import { expect } from 'vitest';
import { randomBase62 } from '../../src/shared/ids.js';
import type { TestContext } from './app.js';
import { type FixtureEvent, type OrderFixture, orderFixture, signed } from './stripe-events.js';

/**
 * An affiliate made through the API, with its codes: `{id, key}` (the affiliate's own bearer header). Terms
 * default to 10%.
 */
export async function createAffiliate(
  ctx: TestContext,
  admin: string,
  codes: string[],
  commission: Record<string, unknown> = { type: 'percent', basis_points: 1000 },
): Promise<{ id: string; key: string }> {
  const headers = { authorization: admin };
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/affiliates',
    headers,
    payload: { name: 'Alice', email: `alice.${randomBase62(6)}@example.com`, commission },
  });
  expect(res.statusCode, res.body).toBe(201);
  const created = res.json() as { id: string; api_key: string };
  for (const code of codes) {
    const added = await ctx.app.inject({
      method: 'POST',
      url: `/v1/affiliates/${created.id}/codes`,
      headers,
      payload: { code },
    });
    expect(added.statusCode, added.body).toBe(201);
  }
  return { id: created.id, key: `Bearer ${created.api_key}` };
}

/**
 * A referred order of one line item checked out through `POST /v1/checkout/sessions` with `code` (not paid
 * yet): the fixture its events are made from, with the session our checkout made.
 */
export async function referredCheckout(
  ctx: TestContext,
  service: string,
  opts: { code: string; amount: number; currency?: string; buyerEmail?: string },
): Promise<OrderFixture> {
  const orderId = `ord_${randomBase62(12)}`;
  const currency = opts.currency ?? 'usd';
  const res = await ctx.app.inject({
    method: 'POST',
    url: '/v1/checkout/sessions',
    headers: { authorization: service, 'idempotency-key': `co-${orderId}` },
    payload: {
      order_id: orderId,
      currency,
      customer_email: opts.buyerEmail ?? 'buyer@shop.example',
      line_items: [{ name: 'Lamp', unit_amount: opts.amount, quantity: 1 }],
      referral_code: opts.code,
    },
  });
  expect(res.statusCode, res.body).toBe(201);
  return orderFixture({ id: orderId, amount: opts.amount, currency, sessionId: res.json().id });
}

/** An event delivered to the inbox as Stripe would deliver it: signed with the service's webhook secret. */
export function deliverSigned(ctx: TestContext, e: FixtureEvent) {
  const { payload, header } = signed(e, ctx.infra.webhookSecrets[0]!);
  return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
}
