import Stripe from 'stripe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DeliveryAttempt, type RunningStripeEmulator, startStripeEmulator } from './index.js';
import { startWebhookReceiver, type WebhookReceiver } from './testing.js';
import { signatureHeader } from './webhooks.js';

/** Webhook delivery: signing, retries, the chaos knobs and the deliveries log, through the official SDK. */

let emulator: RunningStripeEmulator;
let stripe: Stripe;
const cleanups: Array<() => Promise<unknown>> = [];

beforeAll(async () => {
  emulator = await startStripeEmulator({ port: 0, delivery: { retryBaseMs: 10 } });
  stripe = new Stripe('sk_test_webhooks', { host: '127.0.0.1', port: emulator.port, protocol: 'http' });
});

afterEach(async () => {
  await stripe.rawRequest('POST', '/v1/test_helpers/webhooks/chaos', { reset: true });
  while (cleanups.length > 0) await cleanups.pop()?.();
});

afterAll(async () => {
  await emulator?.close();
});

const chaos = (params: Record<string, unknown>) =>
  stripe.rawRequest('POST', '/v1/test_helpers/webhooks/chaos', params);

async function deliveries(params: { event_id?: string; endpoint_id?: string }): Promise<DeliveryAttempt[]> {
  const query = new URLSearchParams(params as Record<string, string>).toString();
  const list = (await stripe.rawRequest('GET', `/v1/test_helpers/deliveries?${query}`)) as {
    data: DeliveryAttempt[];
  };
  return list.data;
}

/** A receiver with its own endpoint, removed after the test. */
async function listener(
  enabledEvents: Stripe.WebhookEndpointCreateParams.EnabledEvent[] = ['*'],
): Promise<{ receiver: WebhookReceiver; endpoint: Stripe.WebhookEndpoint }> {
  const receiver = await startWebhookReceiver();
  const endpoint = await stripe.webhookEndpoints.create({ url: receiver.url, enabled_events: enabledEvents });
  cleanups.push(
    () => receiver.close(),
    () => stripe.webhookEndpoints.del(endpoint.id),
  );
  return { receiver, endpoint };
}

/** Makes `n` events cheaply (one `checkout.session.expired` each) and returns their ids in creation order. */
async function makeEvents(n: number): Promise<string[]> {
  const sessionIds: string[] = [];
  for (let i = 0; i < n; i++) {
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        {
          quantity: 1,
          price_data: { currency: 'eur', unit_amount: 100 + i, product_data: { name: `n${i}` } },
        },
      ],
    });
    await stripe.checkout.sessions.expire(session.id);
    sessionIds.push(session.id);
  }
  const events = await stripe.events.list({ type: 'checkout.session.expired', limit: 100 });
  const byObject = new Map(events.data.map((e) => [(e.data.object as Stripe.Checkout.Session).id, e.id]));
  return sessionIds.map((id) => byObject.get(id) ?? '');
}

function verify(receiver: WebhookReceiver, secret: string): Stripe.Event[] {
  return receiver.received.map((r) => stripe.webhooks.constructEvent(r.rawBody, r.signature, secret));
}

const countOf = (receiver: WebhookReceiver, eventId: string) =>
  receiver.received.filter((r) => r.eventId === eventId).length;

describe('webhook delivery', () => {
  it('signs each delivery as Stripe does, which the SDK verifies and a wrong secret fails', async () => {
    const { receiver, endpoint } = await listener();
    const [eventId] = await makeEvents(1);
    await receiver.waitFor((all) => all.length === 1);
    const [delivery] = receiver.received;
    expect(delivery?.contentType).toBe('application/json; charset=utf-8');
    expect(delivery?.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    const [event] = verify(receiver, endpoint.secret ?? '');
    expect(event?.id).toBe(eventId);
    expect(() =>
      stripe.webhooks.constructEvent(
        delivery?.rawBody ?? '',
        delivery?.signature ?? '',
        'whsec_not_the_secret',
      ),
    ).toThrow(Stripe.errors.StripeSignatureVerificationError);
    const t = Number(/t=(\d+)/.exec(delivery?.signature ?? '')?.[1]);
    expect(signatureHeader(endpoint.secret ?? '', t, delivery?.rawBody ?? '')).toBe(delivery?.signature);
  });

  it('retries with exponential backoff until the endpoint answers 2xx', async () => {
    await chaos({ retry_base_ms: 100 });
    const { receiver, endpoint } = await listener();
    receiver.respondWith((n) => (n <= 2 ? 500 : 200));
    const [eventId = ''] = await makeEvents(1);
    await receiver.waitFor((all) => all.length === 3);
    const [a, b, c] = receiver.received.map((r) => r.receivedAt);
    expect((b ?? 0) - (a ?? 0)).toBeGreaterThanOrEqual(90);
    expect((c ?? 0) - (b ?? 0)).toBeGreaterThanOrEqual(190);
    expect(verify(receiver, endpoint.secret ?? '').every((e) => e.id === eventId)).toBe(true);
    await expect.poll(async () => (await deliveries({ event_id: eventId })).length).toBe(3);
    const log = await deliveries({ event_id: eventId });
    expect(log.map((d) => [d.attempt, d.status, d.response_status])).toEqual([
      [1, 'failed', 500],
      [2, 'failed', 500],
      [3, 'succeeded', 200],
    ]);
    expect((await stripe.events.retrieve(eventId)).pending_webhooks).toBe(0);
  });

  it('counts a timeout as a failed attempt and retries it', async () => {
    await chaos({ timeout_ms: 150 });
    const { receiver } = await listener();
    receiver.respondWith((n) => (n === 1 ? 'hang' : 200));
    const [eventId = ''] = await makeEvents(1);
    await expect
      .poll(async () => (await deliveries({ event_id: eventId })).map((d) => d.status))
      .toEqual(['failed', 'succeeded']);
    const [first] = await deliveries({ event_id: eventId });
    expect(first?.error).toMatch(/timed out/);
    expect(first?.response_status).toBeNull();
  });

  it('gives up after max_attempts and leaves the event pending', async () => {
    await chaos({ max_attempts: 2 });
    const { receiver } = await listener();
    receiver.respondWith(() => 503);
    const [eventId = ''] = await makeEvents(1);
    await receiver.waitFor((all) => all.length === 2);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(receiver.received).toHaveLength(2);
    expect((await deliveries({ event_id: eventId })).map((d) => d.status)).toEqual(['failed', 'failed']);
    expect((await stripe.events.retrieve(eventId)).pending_webhooks).toBe(1);
    const undelivered = await stripe.events.list({ delivery_success: false, limit: 100 });
    expect(undelivered.data.map((e) => e.id)).toContain(eventId);
  });

  it('delivers to an endpoint only the event types it enabled', async () => {
    const { receiver } = await listener(['charge.refunded']);
    const everything = await listener();
    const [eventId] = await makeEvents(1);
    await everything.receiver.waitFor((all) => all.some((r) => r.eventId === eventId));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.received).toHaveLength(0);
  });

  it('duplicate_probability=1 delivers every event at least twice', async () => {
    await chaos({ duplicate_probability: 1 });
    const { receiver, endpoint } = await listener();
    const ids = await makeEvents(3);
    await receiver.waitFor(() => ids.every((id) => countOf(receiver, id) >= 2));
    expect(verify(receiver, endpoint.secret ?? '')).toHaveLength(receiver.received.length);
    for (const id of ids) {
      const log = await deliveries({ event_id: id, endpoint_id: endpoint.id });
      expect(log.filter((d) => d.duplicate)).toHaveLength(1);
      expect(log.filter((d) => !d.duplicate)).toHaveLength(1);
    }
  });

  it('a reorder window delivers events out of creation order', async () => {
    await chaos({ reorder_window_ms: 400 });
    const { receiver, endpoint } = await listener();
    const ids = await makeEvents(5);
    await receiver.waitFor((all) => all.length === 5);
    const arrival = verify(receiver, endpoint.secret ?? '').map((e) => e.id);
    expect([...arrival].sort()).toEqual([...ids].sort());
    expect(arrival).not.toEqual(ids);
  });

  it('delay_ms holds every delivery back', async () => {
    await chaos({ delay_ms: 300 });
    const { receiver } = await listener();
    const started = Date.now();
    await makeEvents(1);
    await receiver.waitFor((all) => all.length === 1);
    expect((receiver.received[0]?.receivedAt ?? 0) - started).toBeGreaterThanOrEqual(290);
  });

  it('fail_first_attempts=2 delivers each event on its third attempt, and the log shows each attempt', async () => {
    await chaos({ fail_first_attempts: 2 });
    const { receiver, endpoint } = await listener();
    const ids = await makeEvents(2);
    await receiver.waitFor((all) => all.length === 2);
    expect(
      verify(receiver, endpoint.secret ?? '')
        .map((e) => e.id)
        .sort(),
    ).toEqual([...ids].sort());
    for (const id of ids) {
      const log = await deliveries({ event_id: id, endpoint_id: endpoint.id });
      expect(log.map((d) => [d.attempt, d.status, d.response_status])).toEqual([
        [1, 'failed', null],
        [2, 'failed', null],
        [3, 'succeeded', 200],
      ]);
      expect(log[0]?.error).toMatch(/fail_first_attempts/);
      expect(countOf(receiver, id)).toBe(1);
    }
  });

  it('reports and resets its chaos settings', async () => {
    const set = (await chaos({ duplicate_probability: 0.5, delay_ms: 5 })) as Record<string, unknown>;
    expect(set).toMatchObject({ object: 'webhook_chaos', duplicate_probability: 0.5, delay_ms: 5 });
    const reset = (await chaos({ reset: true })) as Record<string, unknown>;
    expect(reset).toMatchObject({
      duplicate_probability: 0,
      delay_ms: 0,
      reorder_window_ms: 0,
      fail_first_attempts: 0,
    });
    await expect(chaos({ duplicate_probability: 2 })).rejects.toBeInstanceOf(
      Stripe.errors.StripeInvalidRequestError,
    );
  });

  it('startStripeEmulator registers the endpoint given in its options, with that secret', async () => {
    const receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    const secret = 'whsec_fixedSecretForTheOptionsTest';
    const own = await startStripeEmulator({
      port: 0,
      webhookUrl: receiver.url,
      webhookSecret: secret,
      publicUrl: 'https://pay.example.test/',
    });
    cleanups.push(() => own.close());
    expect(own.webhookSecret).toBe(secret);
    expect(own.url).toBe(`http://127.0.0.1:${own.port}`);
    const client = new Stripe('sk_test_options', { host: '127.0.0.1', port: own.port, protocol: 'http' });
    const session = await client.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { quantity: 1, price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'x' } } },
      ],
    });
    expect(session.url).toBe(`https://pay.example.test/checkout/${session.id}`);
    await client.checkout.sessions.expire(session.id);
    await receiver.waitFor((all) => all.length === 1);
    expect(verify(receiver, secret)[0]?.type).toBe('checkout.session.expired');

    await expect(startStripeEmulator({ port: 0, webhookUrl: 'ftp://nowhere' })).rejects.toThrow(
      /webhook url/,
    );
  });

  it('close() stops pending retries', async () => {
    const own = await startStripeEmulator({ port: 0, delivery: { retryBaseMs: 100 } });
    const receiver = await startWebhookReceiver();
    cleanups.push(() => receiver.close());
    receiver.respondWith(() => 500);
    const client = new Stripe('sk_test_close', { host: '127.0.0.1', port: own.port, protocol: 'http' });
    await client.webhookEndpoints.create({ url: receiver.url, enabled_events: ['*'] });
    const session = await client.checkout.sessions.create({
      mode: 'payment',
      line_items: [
        { quantity: 1, price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'x' } } },
      ],
    });
    await client.checkout.sessions.expire(session.id);
    await receiver.waitFor((all) => all.length === 1);
    await own.close();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receiver.received).toHaveLength(1);
  });
});
