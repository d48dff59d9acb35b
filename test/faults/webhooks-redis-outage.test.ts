import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StripeEventsModule } from '../../src/modules/stripe-events/index.js';
import { createModules } from '../../src/modules.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { BACKENDS } from '../helpers/db.js';
import { createOrderFor, events, type FixtureEvent, orderFixture, signed } from '../helpers/stripe-events.js';

const SECRET = 'whsec_redis_outage_suite';

/**
 * A Redis of this test's own: the shared one on 6379 serves other suites and must never be stopped.
 * No persistence, so a restart comes back empty, as a Redis that lost its memory would.
 */
async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--daemonize', 'no'],
    {
      stdio: 'ignore',
    },
  );
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    if (await answersPing(port)) return child;
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', () => resolve(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
  });
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

describe.each(BACKENDS)('Redis stopped in the middle of a run on %s', (backend) => {
  let port: number;
  let redis: ChildProcess;
  let ctx: TestContext;
  let webhooks: StripeEventsModule;
  const logs: Array<{ level: number; operation?: string }> = [];

  beforeAll(async () => {
    port = await freePort();
    redis = await startRedis(port);
    ctx = await createTestContext(backend, {
      env: { REDIS_URL: `redis://127.0.0.1:${port}`, STRIPE_WEBHOOK_SECRET: SECRET },
    });
    await untilRedisReady();
    const sink = new Writable({
      write(line, _encoding, done) {
        logs.push(JSON.parse(line.toString()));
        done();
      },
    });
    webhooks = createModules({ ...ctx.infra, log: pino({ level: 'info' }, sink) }).stripeEvents;
  });
  afterAll(async () => {
    await ctx?.close();
    if (redis) await kill(redis);
  });

  async function untilRedisReady() {
    const deadline = Date.now() + 15_000;
    while (ctx.infra.redis?.status !== 'ready') {
      if (Date.now() > deadline) throw new Error(`Redis client stuck in ${ctx.infra.redis?.status}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const deliver = (e: FixtureEvent) => {
    const { payload, header } = signed(e, SECRET);
    return webhooks.handleWebhookEvent(Buffer.from(payload), header);
  };
  const fallbacks = async () => {
    const metric = ctx.infra.registry.getSingleMetric('webhook_redis_fallback_total');
    const values = metric ? (await metric.get()).values : [];
    return values.reduce((sum, v) => sum + v.value, 0);
  };
  const marker = (eventId: string) => ctx.infra.kv.get(`stripe:event:${eventId}`);

  /** Pays `n` new orders, each event delivered twice; returns the events. */
  async function payOrders(n: number) {
    const sent: Array<{ orderId: string; event: FixtureEvent }> = [];
    for (let i = 0; i < n; i++) {
      const fx = orderFixture();
      await createOrderFor(ctx.testDb.db, fx);
      const e = events.completed(fx);
      expect((await deliver(e)).status).toBe('processed');
      expect((await deliver(e)).status).toBe('duplicate');
      sent.push({ orderId: fx.id, event: e });
    }
    return sent;
  }

  it('applies every event once while Redis is down, logs the degraded mode once, and uses Redis again after', async () => {
    const before = await payOrders(3);
    for (const { event } of before) expect(await marker(event.id)).toBe('checkout.session.completed');
    expect(await fallbacks()).toBe(0);

    // Stopped while the next run is under way: whatever Redis call is in flight fails, the run goes on.
    const run = payOrders(3);
    await kill(redis);
    const during = await run;
    for (const { event } of before) expect((await deliver(event)).status).toBe('duplicate');
    expect(await fallbacks()).toBeGreaterThan(0);
    const warnings = logs.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.operation).toBeTruthy();

    redis = await startRedis(port);
    await untilRedisReady();
    const fallbacksBeforeReturn = await fallbacks();
    const after = await payOrders(3);
    for (const { event } of after) expect(await marker(event.id)).toBe('checkout.session.completed');
    expect(await fallbacks()).toBe(fallbacksBeforeReturn);
    expect(logs.filter((l) => l.level === 30)).toHaveLength(1);
    // The restarted Redis is empty: the events from before the outage are known through PostgreSQL.
    expect(await marker(before[0]!.event.id)).toBeNull();
    expect((await deliver(before[0]!.event)).status).toBe('duplicate');

    for (const { orderId, event } of [...before, ...during, ...after]) {
      const transitions = await ctx.testDb.db.query<{ to_status: string }>(
        'select to_status from order_events where order_id = $1 and cause = $2',
        [orderId, `stripe:${event.id}`],
      );
      expect(transitions.rows).toEqual([{ to_status: 'paid' }]);
    }
    const open = await ctx.testDb.db.query(`select id from stripe_events where status <> 'done'`);
    expect(open.rows).toEqual([]);
  });
});
