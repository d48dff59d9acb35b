import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fromPg } from '../../src/adapters/postgres.js';
import { loadConfig } from '../../src/config.js';
import type { Worker } from '../../src/jobs/index.js';
import { createNotificationsModule, createOutboxRelay } from '../../src/modules/notifications/index.js';
import type { OrderPatch } from '../../src/modules/orders/index.js';
import {
  changeOrder as applyChange,
  createOrder as insertOrder,
  lockOrder,
} from '../../src/modules/orders/index.js';
import { createModules, moduleWorkers } from '../../src/modules.js';
import type { Db } from '../../src/ports/db.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { BACKENDS } from '../helpers/db.js';
import { TEST_DATABASE_URL } from '../helpers/services.js';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;

/** After creation (seq 1), the changes that take an order through seq 2–5. */
const LIFECYCLE: OrderPatch[] = [
  { status: 'processing' },
  { status: 'paid', amount_paid: 5000, payment_intent_id: 'pi_test' },
  { status: 'partially_refunded', amount_refunded: 1000 },
  { status: 'refunded', amount_refunded: 5000 },
];
const ALL_SEQS = [1, 2, 3, 4, 5];

interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  payload: { id: string; order_id: string; seq: number } & Record<string, unknown>;
  /** 1 for the first request carrying this webhook-id, 2 for its first redelivery, … */
  attempt: number;
  status: number | 'hang';
}

type Respond = (d: Omit<Delivery, 'status'>) => number | 'hang';

/** A real HTTP receiver on 127.0.0.1 that records every request and answers as `respond` says. */
function receiver(respond: Respond) {
  const deliveries: Delivery[] = [];
  const hanging: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(200).end('a followed redirect');
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const id = String(req.headers['webhook-id']);
      const seen = { headers: req.headers, body, payload: JSON.parse(body), attempt: 1 };
      seen.attempt += deliveries.filter((d) => d.headers['webhook-id'] === id).length;
      const status = respond(seen);
      deliveries.push({ ...seen, status });
      if (status === 'hang') hanging.push(res);
      else if (status === 302) res.writeHead(302, { location: '/elsewhere' }).end();
      else
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status >= 300 ? 'receiver says no' : '');
    });
  });
  return {
    deliveries,
    get url() {
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/orders-webhook`;
    },
    listen: (port = 0) => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    /** The seqs of `orderId` the receiver acknowledged with a 2xx, in arrival order. */
    accepted(orderId: string) {
      return deliveries
        .filter((d) => d.payload.order_id === orderId && typeof d.status === 'number' && d.status < 300)
        .map((d) => d.payload.seq);
    },
  };
}

/** Across every request the receiver saw (failed ones too), each order's seq only ever stays or grows. */
function expectSeqNeverBackwards(deliveries: Delivery[]) {
  const last = new Map<string, number>();
  for (const d of deliveries) {
    expect(d.payload.seq, `order ${d.payload.order_id}`).toBeGreaterThanOrEqual(
      last.get(d.payload.order_id) ?? 0,
    );
    last.set(d.payload.order_id, d.payload.seq);
  }
}

describe.each(BACKENDS)('order notifications on %s', (backend) => {
  let ctx: TestContext;
  let db: Db;
  let n = 0;
  const orderId = (label: string) => `ord_${label}_${++n}`;

  beforeAll(async () => {
    ctx = await createTestContext(backend);
    db = ctx.testDb.db;
  });
  afterAll(() => ctx?.close());
  afterEach(async () => {
    // Tests share the database. Each one drains what it sends; one that failed half-way leaves messages that
    // the next test's relay would send to its receiver, so they are set aside rather than failing it too.
    await db.query('update outbox set delivered_at = now() where delivered_at is null');
  });

  async function createOrder(id: string) {
    await db.tx((q) =>
      insertOrder(
        q,
        {
          id,
          currency: 'usd',
          amount_total: 5000,
          line_items: [{ name: 'T-shirt', unit_amount: 2500, quantity: 2 }],
        },
        'api:req_notifications_test',
      ),
    );
  }
  async function changeOrder(id: string, patch: OrderPatch) {
    await db.tx(async (q) => {
      const order = await lockOrder(q, id);
      await applyChange(q, order!, patch, `stripe:evt_${id}_${order!.seq + 1}`);
    });
  }
  async function orderThroughLifecycle(id: string) {
    await createOrder(id);
    for (const patch of LIFECYCLE) await changeOrder(id, patch);
  }
  /** Makes every pending retry due now: the relay reads due times from the database clock. */
  const makeDue = () => db.query('update outbox set next_attempt_at = now() where delivered_at is null');
  /** Runs the relays until the outbox is empty, making retries due between rounds. */
  async function drain(relays: Worker[], maxRounds = 30) {
    for (let round = 1; round <= maxRounds; round++) {
      await Promise.all(relays.map((r) => r.runOnce()));
      if ((await ctx.modules.notifications.backlog()).pending === 0) return;
      await makeDue();
    }
    throw new Error(`outbox not drained after ${maxRounds} rounds`);
  }
  const outboxRows = (ids: string[]) =>
    db.query<{
      order_id: string;
      seq: number;
      attempts: number;
      delivered_at: Date | null;
      last_error: string | null;
    }>(
      'select order_id, seq, attempts, delivered_at, last_error from outbox where order_id = any($1::text[]) order by order_id, seq',
      [ids],
    );
  const metric = async (name: string) => {
    const text = (await ctx.app.inject('/metrics')).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
  };

  it('delivers every message, signed and in seq order, to a receiver that fails its first attempts', async () => {
    // First attempt: a redirect (never followed), second: a 500, third: accepted.
    const rx = receiver((d) => (d.attempt === 1 ? 302 : d.attempt === 2 ? 500 : 204));
    await rx.listen();
    const relay = createOutboxRelay({ db, url: rx.url, secret: SECRET, random: () => 0.99 });
    const ids = [orderId('flaky'), orderId('flaky')];
    try {
      for (const id of ids) await orderThroughLifecycle(id);

      expect(await relay.runOnce()).toBe(2);
      // Only each order's seq 1 went out, and the retries wait out their backoff: 0.99 of the first 5 s window,
      // which ends no later than 4.95 s after now (the failure came before now).
      expect(rx.deliveries.map((d) => d.payload.seq)).toEqual([1, 1]);
      expect(await relay.runOnce()).toBe(0);
      const waiting = await db.query<{ n: number }>(
        `select count(*)::integer as n from outbox
          where attempts = 1 and next_attempt_at > now() and next_attempt_at <= now() + interval '4.95 seconds'`,
      );
      expect(waiting.rows[0]!.n).toBe(2);

      await drain([relay]);
      for (const id of ids) expect(rx.accepted(id)).toEqual(ALL_SEQS);
      expectSeqNeverBackwards(rx.deliveries);
      expect(rx.deliveries).toHaveLength(ids.length * ALL_SEQS.length * 3);
      const rows = (await outboxRows(ids)).rows;
      expect(rows).toHaveLength(10);
      for (const row of rows) {
        expect(row.delivered_at).not.toBeNull();
        expect(row.attempts).toBe(3);
        expect(row.last_error).toBe('HTTP 500: receiver says no');
      }
    } finally {
      await rx.close();
    }
  });

  it('signs with the Standard Webhooks scheme, and a redelivery carries the same webhook-id and body', async () => {
    const rx = receiver((d) => (d.attempt < 3 ? 503 : 200));
    await rx.listen();
    const relay = createOutboxRelay({ db, url: rx.url, secret: SECRET });
    const id = orderId('signed');
    try {
      await orderThroughLifecycle(id);
      await drain([relay]);

      const verifier = new Webhook(SECRET);
      const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
      for (const d of rx.deliveries) {
        const headers = d.headers as Record<string, string>;
        expect(verifier.verify(d.body, headers)).toEqual(d.payload);
        expect(headers['webhook-id']).toBe(d.payload.id);
        expect(headers['content-type']).toBe('application/json');
        // The scheme itself, independently of the library: v1,base64(HMAC-SHA256(key, "id.timestamp.body")).
        const expected = createHmac('sha256', key)
          .update(`${headers['webhook-id']}.${headers['webhook-timestamp']}.${d.body}`)
          .digest('base64');
        expect(headers['webhook-signature']).toBe(`v1,${expected}`);
        expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      }
      expect(() =>
        new Webhook(`whsec_${randomBytes(32).toString('base64')}`).verify(
          rx.deliveries[0]!.body,
          rx.deliveries[0]!.headers as Record<string, string>,
        ),
      ).toThrow();

      const byId = new Map<string, Delivery[]>();
      for (const d of rx.deliveries)
        byId.set(String(d.headers['webhook-id']), [...(byId.get(String(d.headers['webhook-id'])) ?? []), d]);
      expect(byId.size).toBe(5);
      for (const attempts of byId.values()) {
        expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
        expect(new Set(attempts.map((a) => a.body)).size).toBe(1);
      }

      // The body is CONTRACT §4's message.
      const first = rx.deliveries.find((d) => d.payload.seq === 1)!.payload;
      expect(first).toEqual({
        id: expect.stringMatching(/^msg_[A-Za-z0-9]{24}$/),
        type: 'order.awaiting_payment',
        order_id: id,
        seq: 1,
        changes: expect.objectContaining({ status: [null, 'awaiting_payment'] }),
        order: expect.objectContaining({
          id,
          status: 'awaiting_payment',
          amount_total: 5000,
          currency: 'usd',
        }),
        cause: 'api:req_notifications_test',
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      });
      expect(first.order).not.toHaveProperty('history');
      const types = rx
        .accepted(id)
        .map((seq) => rx.deliveries.find((d) => d.payload.seq === seq)!.payload.type);
      expect(types).toEqual([
        'order.awaiting_payment',
        'order.processing',
        'order.paid',
        'order.partially_refunded',
        'order.refunded',
      ]);
    } finally {
      await rx.close();
    }
  });

  it('keeps every message while the receiver is down, delivers them once it is back, and shows the backlog', async () => {
    const port = await freePort();
    const rx = receiver(() => 200);
    // The relay as `serve` builds it from the configuration, counting its attempts in /metrics.
    const infra = {
      ...ctx.infra,
      config: loadConfig({
        NODE_ENV: 'test',
        ORDERS_WEBHOOK_URL: `http://127.0.0.1:${port}/orders-webhook`,
        ORDERS_WEBHOOK_SECRET: SECRET,
      }),
    };
    const relay = moduleWorkers(createModules(infra)).find((w) => w.name === 'outbox-relay')!;
    const ids = [orderId('down'), orderId('down')];
    const failedBefore = (await metric('outbox_delivery_attempts_total{outcome="failed"}')) ?? 0;
    try {
      for (const id of ids) await orderThroughLifecycle(id);
      for (let round = 0; round < 3; round++) {
        expect(await relay.runOnce()).toBe(2);
        await makeDue();
      }
      const down = (await outboxRows(ids)).rows;
      expect(down.filter((r) => r.seq === 1).map((r) => [r.attempts, r.delivered_at])).toEqual([
        [3, null],
        [3, null],
      ]);
      for (const r of down.filter((r) => r.seq === 1)) expect(r.last_error).toMatch(/ECONNREFUSED/);
      expect(down.filter((r) => r.seq > 1).every((r) => r.attempts === 0)).toBe(true);
      expect(await metric('outbox_pending_messages')).toBe(10);
      expect(await metric('outbox_oldest_pending_seconds')).toBeGreaterThan(0);
      expect(await metric('outbox_delivery_attempts_total{outcome="failed"}')).toBe(failedBefore + 6);

      await rx.listen(port);
      await drain([relay]);
      for (const id of ids) expect(rx.accepted(id)).toEqual(ALL_SEQS);
      expect(rx.deliveries).toHaveLength(10);
      expect(await metric('outbox_pending_messages')).toBe(0);
      expect(await metric('outbox_oldest_pending_seconds')).toBe(0);
    } finally {
      await rx.close();
    }
  });

  it('gives up on a request after its timeout and retries it', async () => {
    const rx = receiver((d) => (d.attempt === 1 ? 'hang' : 200));
    await rx.listen();
    const relay = createOutboxRelay({ db, url: rx.url, secret: SECRET, timeoutMs: 300 });
    const id = orderId('slow');
    try {
      await createOrder(id);
      expect(await relay.runOnce()).toBe(1);
      const rows = (await outboxRows([id])).rows;
      expect(rows[0]).toMatchObject({ attempts: 1, delivered_at: null, last_error: 'timeout after 300 ms' });
      await drain([relay]);
      expect(rx.accepted(id)).toEqual([1]);
    } finally {
      await rx.close();
    }
  });

  it("holds back a failing order's later messages without blocking other orders", async () => {
    const stuck = orderId('stuck');
    const healthy = orderId('healthy');
    let stuckFails = true;
    const rx = receiver((d) => (d.payload.order_id === stuck && stuckFails ? 500 : 200));
    await rx.listen();
    const relay = createOutboxRelay({ db, url: rx.url, secret: SECRET });
    try {
      await orderThroughLifecycle(stuck);
      await orderThroughLifecycle(healthy);
      for (let round = 0; round < 6; round++) {
        await relay.runOnce();
        await makeDue();
      }
      expect(rx.accepted(healthy)).toEqual(ALL_SEQS);
      const stuckSeqs = rx.deliveries.filter((d) => d.payload.order_id === stuck).map((d) => d.payload.seq);
      expect(stuckSeqs.length).toBeGreaterThanOrEqual(5);
      expect(new Set(stuckSeqs)).toEqual(new Set([1]));
      const waiting = (await outboxRows([stuck])).rows;
      expect(waiting.map((r) => [r.seq, r.attempts > 0, r.delivered_at])).toEqual([
        [1, true, null],
        [2, false, null],
        [3, false, null],
        [4, false, null],
        [5, false, null],
      ]);

      stuckFails = false;
      await drain([relay]);
      expect(rx.accepted(stuck)).toEqual(ALL_SEQS);
      expectSeqNeverBackwards(rx.deliveries);
    } finally {
      await rx.close();
    }
  });

  it('never sends an order backwards with two relays sharing the outbox while orders change', async () => {
    let arrivals = 0;
    // Every third request fails, so retries and head-of-line waits interleave across orders and relays.
    const rx = receiver(() => (++arrivals % 3 === 0 ? 500 : 200));
    await rx.listen();
    // On PostgreSQL the second relay has its own connection pool, as a second process would.
    const otherDb =
      backend === 'postgres'
        ? fromPg({ connectionString: TEST_DATABASE_URL, schema: ctx.testDb.schema! })
        : db;
    // Millisecond backoff lets retries come due by themselves while both relays poll.
    const retry = { baseMs: 5, capMs: 20 };
    const relays = [
      createOutboxRelay({ db, url: rx.url, secret: SECRET, retry, batchSize: 3 }),
      createOutboxRelay({ db: otherDb, url: rx.url, secret: SECRET, retry, batchSize: 3 }),
    ];
    const ids = Array.from({ length: 6 }, () => orderId('busy'));
    try {
      let producing = true;
      const produce = (async () => {
        for (const id of ids) await createOrder(id);
        for (const patch of LIFECYCLE) await Promise.all(ids.map((id) => changeOrder(id, patch)));
        producing = false;
      })();
      const poll = async (relay: Worker) => {
        for (let i = 0; i < 2_000; i++) {
          if (!producing && (await ctx.modules.notifications.backlog()).pending === 0) return;
          if ((await relay.runOnce()) === 0) await new Promise((r) => setTimeout(r, 5));
        }
        throw new Error('relays did not drain the outbox');
      };
      await Promise.all([produce, ...relays.map(poll)]);

      expectSeqNeverBackwards(rx.deliveries);
      // Exactly once each: the two relays never held the same message at the same time.
      for (const id of ids) expect(rx.accepted(id)).toEqual(ALL_SEQS);
      expect(rx.deliveries.some((d) => d.status === 500)).toBe(true);
    } finally {
      await rx.close();
      if (otherDb !== db) await otherDb.close();
    }
  });

  it('runs no relay without ORDERS_WEBHOOK_URL, and refuses a URL without a usable secret', async () => {
    const withEnv = (env: Record<string, string>) => ({
      ...ctx.infra,
      config: loadConfig({ NODE_ENV: 'development', ...env }),
    });
    const url = 'http://127.0.0.1:9/orders-webhook';

    expect(moduleWorkers(ctx.modules).map((w) => w.name)).not.toContain('outbox-relay');
    const id = orderId('unsent');
    await createOrder(id);
    expect(await ctx.modules.notifications.backlog()).toMatchObject({ pending: 1 });

    expect(() => withEnv({ ORDERS_WEBHOOK_URL: url })).toThrow(/ORDERS_WEBHOOK_SECRET is required/);
    const badSecret = 'whsec_not*base64';
    let refusal: unknown;
    try {
      const infra = withEnv({ ORDERS_WEBHOOK_URL: url, ORDERS_WEBHOOK_SECRET: badSecret });
      createNotificationsModule({ ...infra, ordersWebhook: infra.config.ordersWebhook }).workers();
    } catch (err) {
      refusal = err;
    }
    expect(String(refusal)).toMatch(/ORDERS_WEBHOOK_SECRET is not a valid whsec_ secret/);
    expect(String(refusal)).not.toContain('not*base64');

    // Configured later, the relay delivers what waited.
    const rx = receiver(() => 200);
    await rx.listen();
    try {
      const infra = withEnv({ ORDERS_WEBHOOK_URL: rx.url, ORDERS_WEBHOOK_SECRET: SECRET });
      const relay = moduleWorkers(createModules(infra)).find((w) => w.name === 'outbox-relay')!;
      await drain([relay]);
      expect(rx.accepted(id)).toEqual([1]);
    } finally {
      await rx.close();
    }
  });
});
