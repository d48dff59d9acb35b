import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type App, buildApp } from '../../src/app.js';
import type { Infra } from '../../src/compose.js';
import { authenticate, requireRole } from '../../src/modules/auth/index.js';
import { claimKey, completeKey, sweepExpiredKeys } from '../../src/modules/idempotency/index.js';
import type { OrderRow } from '../../src/modules/orders/index.js';
import { changeOrder, getOrder, lockOrder, orderWithHistory } from '../../src/modules/orders/index.js';
import { createModules, type ModuleOptions, type Modules, moduleWorkers } from '../../src/modules.js';
import { AppError } from '../../src/shared/errors.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { withoutDelivery } from '../helpers/checkout.js';
import { freePort } from '../helpers/cli.js';
import { BACKENDS } from '../helpers/db.js';
import { createAffiliate } from '../helpers/referrals.js';
import { signed } from '../helpers/stripe-events.js';

let seq = 0;
const orderId = () => `ord_ck_${Date.now().toString(36)}_${++seq}`;

const body = (id: string, overrides: Record<string, unknown> = {}) => ({
  order_id: id,
  currency: 'usd',
  customer_email: 'buyer@example.com',
  line_items: [{ name: 'T-shirt', unit_amount: 2500, quantity: 2 }],
  ...overrides,
});

describe.each(BACKENDS)('checkout sessions on %s', (backend) => {
  let ctx: TestContext;
  let service: string;
  let admin: string;
  let counter = 0;
  let flaky = 0;
  /** The app requests go to: the test's own, or one built with other modules for a single test. */
  let swapped: App | undefined;

  beforeAll(async () => {
    ctx = await createTestContext(backend, {
      emulator: true,
      extraRoutes: [
        // Plain POST routes of another module: Idempotency-Key is honoured there without any set-up.
        async (app) => {
          app.post('/test/counter', { onRequest: requireRole('service', 'admin') }, async (_req, reply) => {
            counter++;
            return reply.code(201).send({ n: counter });
          });
          app.post('/test/flaky', { onRequest: requireRole('service', 'admin') }, async () => {
            flaky++;
            if (flaky === 1) throw new Error('transient');
            if (flaky === 2) throw new AppError(409, 'busy', 'try again', { retryable: true });
            return { n: flaky };
          });
          app.post('/test/public', async () => ({ n: ++counter }));
        },
      ],
    });
    service = await ctx.bearer('service');
    admin = await ctx.bearer('admin');
    await createAffiliate(ctx, admin, ['ALICE10', 'BOB_22']);
  });
  afterAll(() => ctx?.close());

  const post = (payload: unknown, key: string | null, bearer = service) =>
    (swapped ?? ctx.app).inject({
      method: 'POST',
      url: '/v1/checkout/sessions',
      headers: { authorization: bearer, ...(key ? { 'idempotency-key': key } : {}) },
      payload: payload as Record<string, unknown>,
    });

  /** Every session the emulator holds for an order. */
  async function sessionsOf(id: string): Promise<Stripe.Checkout.Session[]> {
    const found: Stripe.Checkout.Session[] = [];
    for await (const s of ctx.infra.stripe.checkout.sessions.list({ limit: 100 })) {
      if (s.client_reference_id === id) found.push(s);
    }
    return found;
  }

  const count = async (table: string, where = 'true', values: unknown[] = []) =>
    Number(
      (
        await ctx.testDb.db.query<{ n: number }>(
          `select count(*)::int as n from ${table} where ${where}`,
          values,
        )
      ).rows[0]!.n,
    );

  const order = async (id: string) => (await getOrder(ctx.testDb.db, id)) as OrderRow;

  /** Sends this test's requests to an app whose modules are built with `options` (and `infra` changes). */
  async function withModules<T>(
    options: ModuleOptions,
    infra: Partial<Infra>,
    fn: (modules: Modules) => Promise<T>,
  ): Promise<T> {
    const changed = { ...ctx.infra, ...infra };
    const modules = createModules(changed, options);
    swapped = await buildApp({ infra: changed, modules, logger: false });
    try {
      return await fn(modules);
    } finally {
      await swapped.close();
      swapped = undefined;
    }
  }

  /** Checkout with a fault seam (a crash after Stripe answered), for one test. */
  const withSeam = <T>(afterStripeCall: () => Promise<void>, fn: () => Promise<T>) =>
    withModules({ checkoutHooks: { afterStripeCall } }, {}, fn);

  /** Checkout that talks to `stripe`, for one test. */
  const withStripe = <T>(stripe: Stripe, fn: (modules: Modules) => Promise<T>) =>
    withModules({}, { stripe }, fn);

  const completeSession = (sessionId: string, outcome: 'paid' | 'async_pending') =>
    ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${sessionId}/complete`, {
      outcome,
    });

  /** Delivers, signed, the emulator's event of `type` about `objectId` (one that delivery held back). */
  async function deliverHeldBack(type: string, objectId: string) {
    const listed = await ctx.infra.stripe.events.list({ type, limit: 100 });
    const event = listed.data.find((e) => (e.data.object as { id: string }).id === objectId);
    if (!event) throw new Error(`the emulator has no ${type} event for ${objectId}`);
    const { payload, header } = signed(event, ctx.infra.webhookSecrets[0]!);
    return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
  }

  it('creates the order and a Checkout Session carrying the order id everywhere', async () => {
    const id = orderId();
    const res = await post(body(id, { referral_code: 'ALICE10', client_ip: '203.0.113.7' }), `k-${id}`);
    expect(res.statusCode).toBe(201);
    const view = res.json();
    expect(view).toMatchObject({ order_id: id, status: 'open', amount_total: 5000, currency: 'usd' });
    expect(view.id).toMatch(/^cs_/);
    expect(typeof view.url).toBe('string');
    expect(Number.isInteger(view.expires_at)).toBe(true);

    const [session, ...more] = await sessionsOf(id);
    expect(more).toHaveLength(0);
    expect(session!.id).toBe(view.id);
    expect(session!.metadata).toEqual({ order_id: id, referral_code: 'ALICE10' });
    expect(session!.customer_email).toBe('buyer@example.com');
    expect(session!.success_url).toBe(
      `${ctx.infra.config.publicUrl}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
    );
    expect(session!.cancel_url).toBe(`${ctx.infra.config.publicUrl}/checkout/cancel?order_id=${id}`);

    const stored = await order(id);
    expect(stored).toMatchObject({
      status: 'awaiting_payment',
      amount_total: 5000,
      checkout_session_id: view.id,
      referral_code: 'ALICE10',
      client_ip: '203.0.113.7',
    });
    const got = await ctx.app.inject({ url: `/v1/orders/${id}`, headers: { authorization: admin } });
    const history = got.json().history;
    expect(history.map((h: { seq: number }) => h.seq)).toEqual([1]);
    expect(history[0].from).toBeNull();
    expect(history[0].changes).toMatchObject({
      status: [null, 'awaiting_payment'],
      checkout_session_id: [null, view.id],
      amount_total: [null, 5000],
    });
  });

  it('puts the order id and referral code on the PaymentIntent too', async () => {
    const id = orderId();
    const view = (await post(body(id, { referral_code: 'BOB_22' }), `k-${id}`)).json();
    await ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${view.id}/complete`, {
      outcome: 'paid',
    });
    const session = await ctx.infra.stripe.checkout.sessions.retrieve(view.id);
    const pi = await ctx.infra.stripe.paymentIntents.retrieve(session.payment_intent as string);
    expect(pi.metadata).toEqual({ order_id: id, referral_code: 'BOB_22' });
  });

  describe('Idempotency-Key', () => {
    it('is required: without one, 400 idempotency_key_missing and nothing stored', async () => {
      const id = orderId();
      const res = await post(body(id), null);
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('idempotency_key_missing');
      expect(await count('orders', 'id = $1', [id])).toBe(0);
      expect(await sessionsOf(id)).toHaveLength(0);
    });

    it('replays the stored response for the same key and request, creating one session', async () => {
      const id = orderId();
      const first = await post(body(id), `k-${id}`);
      // A retry sends the same bytes again.
      const again = await post(body(id), `k-${id}`);
      expect(first.statusCode).toBe(201);
      expect(again.statusCode).toBe(201);
      expect(again.headers['idempotent-replayed']).toBe('true');
      expect(first.headers['idempotent-replayed']).toBeUndefined();
      expect(again.body).toBe(first.body);
      expect(await sessionsOf(id)).toHaveLength(1);
      expect(await count('stripe_calls', 'order_id = $1', [id])).toBe(1);
    });

    it('refuses the same key with a different request: 422 idempotency_key_reused', async () => {
      const id = orderId();
      expect((await post(body(id), `k-${id}`)).statusCode).toBe(201);
      const res = await post(body(id, { customer_email: 'other@example.com' }), `k-${id}`);
      expect(res.statusCode).toBe(422);
      expect(res.json().error.code).toBe('idempotency_key_reused');
      expect(await sessionsOf(id)).toHaveLength(1);
      expect((await order(id)).customer_email).toBe('buyer@example.com');
    });

    it('answers 409 idempotency_key_in_use while the first request is in flight', async () => {
      const id = orderId();
      let reached!: () => void;
      const atStripe = new Promise<void>((resolve) => {
        reached = resolve;
      });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      await withSeam(
        async () => {
          reached();
          await gate;
        },
        async () => {
          const first = post(body(id), `k-${id}`);
          await atStripe;
          const second = await post(body(id), `k-${id}`);
          expect(second.statusCode).toBe(409);
          expect(second.json().error.code).toBe('idempotency_key_in_use');
          release();
          expect((await first).statusCode).toBe(201);
        },
      );
      const third = await post(body(id), `k-${id}`);
      expect(third.headers['idempotent-replayed']).toBe('true');
      expect(await sessionsOf(id)).toHaveLength(1);
    });

    it('creates exactly one session for 10 concurrent requests with one key', async () => {
      const id = orderId();
      const answers = await Promise.all(Array.from({ length: 10 }, () => post(body(id), `k-${id}`)));
      const created = answers.filter((a) => a.statusCode === 201);
      const busy = answers.filter((a) => a.statusCode === 409);
      expect(created.length + busy.length).toBe(10);
      expect(created.length).toBeGreaterThanOrEqual(1);
      for (const b of busy) expect(b.json().error.code).toBe('idempotency_key_in_use');
      expect(new Set(created.map((c) => c.json().id)).size).toBe(1);
      const sessions = await sessionsOf(id);
      expect(sessions).toHaveLength(1);
      expect(sessions[0]!.id).toBe(created[0]!.json().id);
    });

    it('scopes keys to the API key that sent them', async () => {
      const a = orderId();
      const b = orderId();
      const other = await ctx.bearer('service');
      expect((await post(body(a), 'shared-key')).statusCode).toBe(201);
      const res = await post(body(b), 'shared-key', other);
      expect(res.statusCode).toBe(201);
      expect(res.json().order_id).toBe(b);
    });

    it('keeps keys 24 hours: an expired key starts afresh, and the sweeper deletes it', async () => {
      const id = orderId();
      const key = `k-${id}`;
      const first = (await post(body(id), key)).json();
      await ctx.testDb.db.query(
        `update idempotency_keys set expires_at = now() - interval '1 second' where key = $1`,
        [key],
      );
      const res = await post(body(id, { customer_email: 'later@example.com' }), key);
      expect(res.statusCode).toBe(201);
      expect(res.headers['idempotent-replayed']).toBeUndefined();
      expect(res.json().id).not.toBe(first.id);
      const { rows } = await ctx.testDb.db.query<{ hours: number }>(
        `select round(extract(epoch from expires_at - created_at) / 3600)::int as hours from idempotency_keys where key = $1`,
        [key],
      );
      expect(rows[0]!.hours).toBe(24);
      await ctx.testDb.db.query(
        `update idempotency_keys set expires_at = now() - interval '1 second' where key = $1`,
        [key],
      );
      expect(await sweepExpiredKeys(ctx.testDb.db, 100)).toBeGreaterThanOrEqual(1);
      expect(await count('idempotency_keys', 'key = $1', [key])).toBe(0);
    });

    it('stores nothing for a refused request, so the corrected request may use the same key', async () => {
      const id = orderId();
      const bad = await post(body(id, { currency: 'xyz' }), `k-${id}`);
      expect(bad.statusCode).toBe(400);
      expect(await count('idempotency_keys', 'key = $1', [`k-${id}`])).toBe(0);
      expect((await post(body(id), `k-${id}`)).statusCode).toBe(201);
    });

    it('is honoured on every other POST route: replayed, and refused for a different request', async () => {
      const call = (key: string | null, payload: Record<string, unknown> = { a: 1 }) =>
        ctx.app.inject({
          method: 'POST',
          url: '/test/counter',
          headers: { authorization: service, ...(key ? { 'idempotency-key': key } : {}) },
          payload,
        });
      const one = await call(null);
      const two = await call(null);
      expect(two.json().n).toBe(one.json().n + 1);
      const first = await call('"counter-key"');
      const replay = await call('"counter-key"');
      expect(first.statusCode).toBe(201);
      expect(replay.statusCode).toBe(201);
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(replay.json().n).toBe(first.json().n);
      expect(counter).toBe(first.json().n);
      const reused = await call('"counter-key"', { a: 2 });
      expect(reused.statusCode).toBe(422);
      expect(reused.json().error.code).toBe('idempotency_key_reused');
    });

    it('does not store failures a retry may cure: a 500 or a retryable error frees the key at once', async () => {
      const call = () =>
        ctx.app.inject({
          method: 'POST',
          url: '/test/flaky',
          headers: { authorization: service, 'idempotency-key': 'flaky' },
          payload: {},
        });
      expect((await call()).statusCode).toBe(500);
      expect((await call()).statusCode).toBe(409);
      const ok = await call();
      expect(ok.statusCode).toBe(200);
      expect(ok.json().n).toBe(3);
      expect((await call()).headers['idempotent-replayed']).toBe('true');
      expect(flaky).toBe(3);
    });

    it('ignores the header where no API key gives it a scope', async () => {
      const call = () =>
        ctx.app.inject({
          method: 'POST',
          url: '/test/public',
          headers: { 'idempotency-key': 'anon' },
          payload: {},
        });
      const a = (await call()).json().n;
      expect((await call()).json().n).toBe(a + 1);
      expect(await count('idempotency_keys', 'key = $1', ['anon'])).toBe(0);
    });

    it('lets a retry take over a key whose holder died, once its lease has run out', async () => {
      const keyId = (await authenticate(ctx.testDb.db, service.slice('Bearer '.length)))!.keyId;
      const held = await claimKey(ctx.testDb.db, keyId, 'lease-key', 'fp');
      expect(held.kind).toBe('held');
      expect((await claimKey(ctx.testDb.db, keyId, 'lease-key', 'fp')).kind).toBe('in_use');
      await ctx.testDb.db.query(
        `update idempotency_keys set locked_until = now() - interval '1 second' where key = 'lease-key'`,
      );
      const taken = await claimKey(ctx.testDb.db, keyId, 'lease-key', 'fp');
      expect(taken).toMatchObject({ kind: 'held', key: { fresh: false } });
      if (held.kind === 'held' && taken.kind === 'held') {
        expect(taken.key.id).toBe(held.key.id);
        // The presumed-dead first holder comes back: it may no longer store its response.
        await completeKey(ctx.testDb.db, held.key, {
          status: 201,
          type: 'application/json',
          body: '{}',
        });
        expect((await claimKey(ctx.testDb.db, keyId, 'lease-key', 'fp')).kind).toBe('in_use');
      }
    });

    it('refuses a malformed key', async () => {
      const res = await post(body(orderId()), 'x'.repeat(256));
      expect(res.statusCode).toBe(400);
      expect(res.json().error.details.fields).toHaveProperty('headers.idempotency-key');
    });
  });

  describe('a crash between Stripe and our database', () => {
    const crash = async () => {
      throw new Error('simulated crash after Stripe answered');
    };

    it('is healed by a retry with the same key: same session, one session in Stripe', async () => {
      const id = orderId();
      const failed = await withSeam(crash, () => post(body(id), `k-${id}`));
      expect(failed.statusCode).toBe(500);
      const [made, ...more] = await sessionsOf(id);
      expect(more).toHaveLength(0);
      expect((await order(id)).checkout_session_id).toBeNull();
      expect(await count('stripe_calls', `order_id = $1 and status = 'pending'`, [id])).toBe(1);

      const retry = await post(body(id), `k-${id}`);
      expect(retry.statusCode).toBe(201);
      expect(retry.json().id).toBe(made!.id);
      expect(await sessionsOf(id)).toHaveLength(1);
      expect((await order(id)).checkout_session_id).toBe(made!.id);
      expect(await count('stripe_calls', `order_id = $1 and status = 'done'`, [id])).toBe(1);
    });

    it('is healed by the completer when nobody retries', async () => {
      const id = orderId();
      expect((await withSeam(crash, () => post(body(id), `k-${id}`))).statusCode).toBe(500);
      const [made] = await sessionsOf(id);
      // The completer leaves young attempts to their requests; make this one due now.
      await ctx.testDb.db.query(`update stripe_calls set next_attempt_at = now() where order_id = $1`, [id]);
      const completer = moduleWorkers(ctx.modules).find((w) => w.name === 'stripe-calls-completer')!;
      expect(await completer.runOnce()).toBeGreaterThanOrEqual(1);

      expect((await order(id)).checkout_session_id).toBe(made!.id);
      expect(await count('stripe_calls', `order_id = $1 and status = 'done'`, [id])).toBe(1);
      expect(await count('checkout_sessions', 'order_id = $1', [id])).toBe(1);
      expect(await sessionsOf(id)).toHaveLength(1);
      const retry = await post(body(id), `k-${id}`);
      expect(retry.statusCode).toBe(201);
      expect(retry.json().id).toBe(made!.id);
    });
    it('keeps another request for the same order waiting until the half-done one is finished', async () => {
      const id = orderId();
      expect((await withSeam(crash, () => post(body(id), `a-${id}`))).statusCode).toBe(500);
      const other = await post(body(id), `b-${id}`);
      expect(other.statusCode).toBe(409);
      expect(other.json().error.code).toBe('checkout_in_progress');
      const resumed = (await post(body(id), `a-${id}`)).json();
      const next = await post(body(id), `b-${id}`);
      expect(next.statusCode).toBe(201);
      expect((await ctx.infra.stripe.checkout.sessions.retrieve(resumed.id)).status).toBe('expired');
      expect((await order(id)).checkout_session_id).toBe(next.json().id);
    });
  });

  describe('validation', () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      [
        'a fractional amount',
        { line_items: [{ name: 'A', unit_amount: 25.5, quantity: 1 }] },
        'body.line_items.0.unit_amount',
      ],
      [
        'a negative amount',
        { line_items: [{ name: 'A', unit_amount: -100, quantity: 1 }] },
        'body.line_items.0.unit_amount',
      ],
      [
        'a fractional quantity',
        { line_items: [{ name: 'A', unit_amount: 100, quantity: 1.5 }] },
        'body.line_items.0.quantity',
      ],
      [
        'a KWD amount not ending in 0',
        { currency: 'kwd', line_items: [{ name: 'A', unit_amount: 1234, quantity: 1 }] },
        'body.line_items.0.unit_amount',
      ],
      ['an unknown currency', { currency: 'xyz' }, 'body.currency'],
      ['no line items', { line_items: [] }, 'body.line_items'],
      [
        'a total over the limit',
        { line_items: [{ name: 'A', unit_amount: 99_999_999, quantity: 2 }] },
        'body.line_items',
      ],
      ['an order id with a space', { order_id: 'ord 1' }, 'body.order_id'],
    ];

    it.each(cases)(
      'refuses %s with 400 validation_failed naming the field, storing nothing',
      async (_, overrides, field) => {
        const id = orderId();
        const payload = body(id, overrides);
        const res = await post(payload, `k-${id}`);
        expect(res.statusCode).toBe(400);
        expect(res.json().error.code).toBe('validation_failed');
        expect(Object.keys(res.json().error.details.fields)).toContain(field);
        const target = String(payload.order_id);
        expect(await count('orders', 'id = $1', [target])).toBe(0);
        expect(await count('stripe_calls', 'order_id = $1', [target])).toBe(0);
        expect(await count('idempotency_keys', 'key = $1', [`k-${id}`])).toBe(0);
        expect(await sessionsOf(target)).toHaveLength(0);
      },
    );

    it('explains the KWD rule in the message', async () => {
      const res = await post(
        body(orderId(), { currency: 'kwd', line_items: [{ name: 'A', unit_amount: 1234, quantity: 1 }] }),
        'kwd',
      );
      expect(res.json().error.details.fields['body.line_items.0.unit_amount']).toMatch(
        /last digit to be 0.*use 1230/,
      );
    });

    it('accepts zero-decimal JPY and three-decimal KWD ending in 0', async () => {
      const jpy = orderId();
      const yen = await post(
        body(jpy, { currency: 'jpy', line_items: [{ name: 'Tea', unit_amount: 1500, quantity: 3 }] }),
        `k-${jpy}`,
      );
      expect(yen.statusCode).toBe(201);
      expect(yen.json()).toMatchObject({ amount_total: 4500, currency: 'jpy' });
      const kwd = orderId();
      const dinar = await post(
        body(kwd, { currency: 'KWD', line_items: [{ name: 'Tea', unit_amount: 1230, quantity: 1 }] }),
        `k-${kwd}`,
      );
      expect(dinar.statusCode).toBe(201);
      expect((await order(kwd)).currency).toBe('kwd');
    });
  });

  describe('an existing order', () => {
    it('gets a new session that expires the previous open one', async () => {
      const id = orderId();
      const first = (await post(body(id), `a-${id}`)).json();
      const second = await post(
        body(id, { line_items: [{ name: 'Hoodie', unit_amount: 4000, quantity: 1 }] }),
        `b-${id}`,
      );
      expect(second.statusCode).toBe(201);
      expect(second.json().id).not.toBe(first.id);
      expect((await ctx.infra.stripe.checkout.sessions.retrieve(first.id)).status).toBe('expired');
      expect((await ctx.infra.stripe.checkout.sessions.retrieve(second.json().id)).status).toBe('open');
      const stored = await order(id);
      expect(stored).toMatchObject({ checkout_session_id: second.json().id, amount_total: 4000 });
      expect(await count('checkout_sessions', 'order_id = $1 and superseded_at is null', [id])).toBe(1);
    });

    it('gets a new session when Stripe no longer knows the previous one', async () => {
      const id = orderId();
      await post(body(id), `a-${id}`);
      // As after a restart of the embedded emulator, whose state lives in memory.
      await ctx.testDb.db.query(
        `update checkout_sessions set id = 'cs_forgotten_' || order_id where order_id = $1`,
        [id],
      );
      const res = await post(body(id), `b-${id}`);
      expect(res.statusCode).toBe(201);
      expect((await order(id)).checkout_session_id).toBe(res.json().id);
    });

    it('reopens an expired order to awaiting_payment with one diff', async () => {
      const id = orderId();
      const first = (await post(body(id), `a-${id}`)).json();
      await ctx.testDb.db.tx(async (q) => {
        const o = (await lockOrder(q, id))!;
        await changeOrder(q, o, { status: 'expired' }, 'test:expire');
      });
      const second = (await post(body(id), `b-${id}`)).json();
      const stored = await order(id);
      expect(stored.status).toBe('awaiting_payment');
      const history = (await orderWithHistory(ctx.testDb.db, id)).history;
      expect(history.at(-1)!.changes).toEqual({
        status: ['expired', 'awaiting_payment'],
        checkout_session_id: [first.id, second.id],
      });
    });

    it('never expires the order when the expiry of the replaced session arrives before the new session is stored', async () => {
      const id = orderId();
      const first = (await post(body(id), `a-${id}`)).json();
      const expiry = async () =>
        (
          await ctx.testDb.db.query<{ status: string; reason: string | null }>(
            `select status, reason from stripe_events
              where type = 'checkout.session.expired' and payload -> 'data' -> 'object' ->> 'id' = $1`,
            [first.id],
          )
        ).rows[0];
      // Phase 3 waits until the emulator's checkout.session.expired for the first session has been handled.
      const second = await withSeam(
        async () => {
          for (let i = 0; i < 400; i++) {
            const handled = await expiry();
            if (handled && handled.status !== 'pending') return;
            await new Promise((r) => setTimeout(r, 25));
          }
          throw new Error(`the expiry of ${first.id} never arrived`);
        },
        () => post(body(id), `b-${id}`),
      );
      expect(second.statusCode).toBe(201);
      const history = (await orderWithHistory(ctx.testDb.db, id)).history;
      expect(history.map((h) => h.to)).not.toContain('expired');
      expect(await count('outbox', `order_id = $1 and type = 'order.expired'`, [id])).toBe(0);
      expect(await order(id)).toMatchObject({
        status: 'awaiting_payment',
        checkout_session_id: second.json().id,
      });
      // Held while the new session was being made; storing it woke the event, which now changes nothing.
      await ctx.modules.stripeEvents.applyDue();
      expect(await expiry()).toMatchObject({ status: 'done', reason: expect.stringMatching(/replaced/) });
      expect((await order(id)).status).toBe('awaiting_payment');
    });

    it('expires the earlier session at the next checkout when the one before could not', async () => {
      const id = orderId();
      const first = (await post(body(id), `a-${id}`)).json();
      const unreachable = new Stripe('sk_test_unreachable', {
        host: '127.0.0.1',
        port: await freePort(),
        protocol: 'http',
        maxNetworkRetries: 0,
      });
      await withStripe(unreachable, async (modules) => {
        const failed = await post(body(id), `b-${id}`);
        expect(failed.statusCode).toBe(503);
        // Every try of the completer meets the same outage, until it gives the attempt up for good.
        const completer = moduleWorkers(modules).find((w) => w.name === 'stripe-calls-completer')!;
        const pending = () => count('stripe_calls', `order_id = $1 and status = 'pending'`, [id]);
        for (let i = 0; i < 50 && (await pending()) > 0; i++) {
          await ctx.testDb.db.query(
            `update stripe_calls set next_attempt_at = now() where order_id = $1 and status = 'pending'`,
            [id],
          );
          await completer.runOnce();
        }
      });
      // The request's own try and the completer's ten, then the call fails for good.
      const failed = await ctx.testDb.db.query<{ attempts: number; error: { code: string } }>(
        `select attempts, error from stripe_calls where order_id = $1 and status = 'failed'`,
        [id],
      );
      expect(failed.rows).toEqual([
        { attempts: 11, error: expect.objectContaining({ code: 'stripe_unreachable' }) },
      ]);
      expect((await ctx.infra.stripe.checkout.sessions.retrieve(first.id)).status).toBe('open');

      const third = await post(body(id), `c-${id}`);
      expect(third.statusCode).toBe(201);
      expect((await ctx.infra.stripe.checkout.sessions.retrieve(first.id)).status).toBe('expired');
      const open = (await sessionsOf(id)).filter((s) => s.status === 'open').map((s) => s.id);
      expect(open).toEqual([third.json().id]);
    });

    it('answers 409 order_already_paid while the delayed payment of the previous session is on its way', async () => {
      const id = orderId();
      const first = (await post(body(id), `a-${id}`)).json();
      // The "completed, payment pending" webhook has not arrived: the order still awaits payment.
      const res = await withoutDelivery(ctx, async () => {
        await completeSession(first.id, 'async_pending');
        return post(body(id), `b-${id}`);
      });
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('order_already_paid');
      expect(await sessionsOf(id)).toHaveLength(1);
      expect(await order(id)).toMatchObject({ status: 'awaiting_payment', checkout_session_id: first.id });
      expect((await deliverHeldBack('checkout.session.completed', first.id)).status).toBe('processed');
      expect((await order(id)).status).toBe('processing');
    });

    it('lets a new session replace one whose delayed payment failed, and late events of the old session leave it alone', async () => {
      const id = orderId();
      const first = (await post(body(id), `a-${id}`)).json();
      const second = await withoutDelivery(ctx, async () => {
        await completeSession(first.id, 'async_pending');
        const pi = (await ctx.infra.stripe.checkout.sessions.retrieve(first.id)).payment_intent as string;
        await ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/payment_intents/${pi}/async_result`, {
          result: 'failed',
        });
        return post(body(id), `b-${id}`);
      });
      expect(second.statusCode).toBe(201);
      for (const type of ['checkout.session.completed', 'checkout.session.async_payment_failed']) {
        expect((await deliverHeldBack(type, first.id)).status).toBe('processed');
      }
      expect(await order(id)).toMatchObject({
        status: 'awaiting_payment',
        checkout_session_id: second.json().id,
      });
    });

    it('answers 409 order_already_paid for a paid order and creates no session', async () => {
      const id = orderId();
      await post(body(id), `a-${id}`);
      await ctx.testDb.db.tx(async (q) => {
        const o = (await lockOrder(q, id))!;
        await changeOrder(q, o, { status: 'paid', amount_paid: 5000 }, 'test:paid');
      });
      const res = await post(body(id), `b-${id}`);
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('order_already_paid');
      expect(await sessionsOf(id)).toHaveLength(1);
      expect(await count('stripe_calls', 'order_id = $1', [id])).toBe(1);
    });
  });

  describe('success and cancel pages', () => {
    it('show the order and never mark it paid, even when Stripe reports the payment', async () => {
      const id = orderId();
      const view = (
        await post(
          body(id, { currency: 'jpy', line_items: [{ name: 'Tea', unit_amount: 5000, quantity: 1 }] }),
          `k-${id}`,
        )
      ).json();
      const before = await ctx.app.inject(`/checkout/success?session_id=${view.id}`);
      expect(before.statusCode).toBe(200);
      expect(before.headers['content-type']).toMatch(/text\/html/);
      expect(before.body).toContain('¥5,000');
      expect(before.body).toContain('data-status="awaiting_payment"');

      // With webhook delivery off, only the page could change the order; it must not.
      const endpoints = (await ctx.infra.stripe.webhookEndpoints.list()).data;
      for (const e of endpoints) await ctx.infra.stripe.webhookEndpoints.update(e.id, { disabled: true });
      try {
        await ctx.infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${view.id}/complete`, {
          outcome: 'paid',
        });
        const seqBefore = (await order(id)).seq;
        const after = await ctx.app.inject(`/checkout/success?session_id=${view.id}`);
        expect(after.statusCode).toBe(200);
        expect(after.body).toContain('Payment received');
        expect(await order(id)).toMatchObject({ status: 'awaiting_payment', seq: seqBefore, amount_paid: 0 });
      } finally {
        for (const e of endpoints) await ctx.infra.stripe.webhookEndpoints.update(e.id, { disabled: false });
      }
    });

    it('says unknown checkouts are unknown', async () => {
      const res = await ctx.app.inject('/checkout/success?session_id=cs_nothing_here');
      expect(res.statusCode).toBe(404);
      expect(res.body).toContain('Checkout not found');
    });

    it('shows nothing for a session made at Stripe outside this service, even one naming a real order', async () => {
      const id = orderId();
      await post(body(id), `k-${id}`);
      const foreign = await ctx.infra.stripe.checkout.sessions.create({
        mode: 'payment',
        client_reference_id: id,
        success_url: 'https://shop.example/ok',
        line_items: [
          { quantity: 1, price_data: { currency: 'usd', unit_amount: 100, product_data: { name: 'X' } } },
        ],
      });
      const res = await ctx.app.inject(`/checkout/success?session_id=${foreign.id}`);
      expect(res.statusCode).toBe(404);
      expect(res.body).not.toContain(id);
    });

    it('cancel page tells nothing about the order, nor whether it exists', async () => {
      const id = orderId();
      await post(body(id), `k-${id}`);
      const known = await ctx.app.inject(`/checkout/cancel?order_id=${id}`);
      expect(known.statusCode).toBe(200);
      expect(known.body).toContain('Checkout cancelled');
      expect(known.body).not.toContain('$50.00');
      const unknown = await ctx.app.inject('/checkout/cancel?order_id=ord_unknown');
      expect([unknown.statusCode, unknown.body]).toEqual([known.statusCode, known.body]);
    });
  });
});
