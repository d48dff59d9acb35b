import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ProcessResult, StripeEventSchema } from '../../src/modules/stripe-events/index.js';
import { createModules } from '../../src/modules.js';
import { startStripeEmulator } from '../../stripe-emulator/index.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { cliProcess, freePort } from '../helpers/cli.js';
import { BACKENDS, urlWithSchema } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/services.js';
import { createOrderFor, deliveryHeaders, events, orderFixture, signed } from '../helpers/stripe-events.js';

const SECRET = 'whsec_concurrency_suite';
const DELIVERIES = 50;

/** A promise with its resolve function outside, to hold a processor at a chosen point. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe.each(BACKENDS)('duplicate deliveries and locks on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { listen: true, env: { STRIPE_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(() => ctx?.close());

  /** What one event did to its order: transitions it caused, outbox messages for them, and the inbox row. */
  async function effects(orderId: string, eventId: string) {
    const db = ctx.testDb.db;
    const transitions = await db.query<{ seq: number; to_status: string }>(
      'select seq, to_status from order_events where order_id = $1 and cause = $2',
      [orderId, `stripe:${eventId}`],
    );
    const seqs = transitions.rows.map((r) => r.seq);
    const outbox = await db.query('select id from outbox where order_id = $1 and seq = any($2::integer[])', [
      orderId,
      seqs,
    ]);
    const inbox = await db.query<{ status: string }>('select status from stripe_events where id = $1', [
      eventId,
    ]);
    return { transitions: transitions.rows, outbox: outbox.rows.length, inbox: inbox.rows };
  }

  /** Sends the same signed delivery DELIVERIES times at once, spread over `urls`. */
  async function storm(urls: string[], e: unknown) {
    const { payload, header } = signed(e, SECRET);
    return Promise.all(
      Array.from({ length: DELIVERIES }, async (_, i) => {
        const res = await fetch(`${urls[i % urls.length]}/webhooks/stripe`, {
          method: 'POST',
          headers: deliveryHeaders(header),
          body: payload,
        });
        return { status: res.status, body: (await res.json()) as { status: string; event_id: string } };
      }),
    );
  }

  /**
   * An event recorded by a delivery whose processing never ran (a crash after the commit) and now due: every
   * redelivery tries to finish it, all at once, alongside the retry workers.
   */
  async function recordedButUnprocessed() {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.completed(fx);
    expect(await ctx.modules.stripeEvents.recordEvent(StripeEventSchema.parse(e))).toBe(true);
    await ctx.testDb.db.query(
      `update stripe_events set next_attempt_at = now() - interval '1 second' where id = $1`,
      [e.id],
    );
    return { fx, e };
  }

  async function expectAppliedOnce(orderId: string, eventId: string) {
    // A delivery that found the event locked answers at once; the holder (another request, or a service
    // process's retry worker) may still be committing.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const row = await ctx.testDb.db.query<{ status: string }>(
        'select status from stripe_events where id = $1',
        [eventId],
      );
      if (row.rows[0]?.status === 'done' || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const done = await effects(orderId, eventId);
    expect(done.transitions).toEqual([{ seq: 2, to_status: 'paid' }]);
    expect(done.outbox).toBe(1);
    expect(done.inbox).toEqual([{ status: 'done' }]);
  }

  const settledCount = async () =>
    (await ctx.infra.registry.getSingleMetric('webhook_events_processed_total')!.get()).values.find(
      (v) => v.labels.type === 'checkout.session.completed',
    )?.value ?? 0;

  it('applies one event delivered 50 times at once in one process exactly once', async () => {
    const before = await settledCount();
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.completed(fx);
    const answers = await storm([ctx.url], e);
    expect(answers.every((a) => a.status === 200 && a.body.event_id === e.id)).toBe(true);
    expect(answers.filter((a) => a.body.status === 'processed')).toHaveLength(1);
    expect(answers.filter((a) => a.body.status === 'duplicate')).toHaveLength(DELIVERIES - 1);
    await expectAppliedOnce(fx.id, e.id);

    const stuck = await recordedButUnprocessed();
    const retried = await storm([ctx.url], stuck.e);
    expect(retried.every((a) => a.status === 200 && a.body.status === 'duplicate')).toBe(true);
    await expectAppliedOnce(stuck.fx.id, stuck.e.id);
    // However many processors raced, one found each inbox row open and settled it; the rest found it done.
    expect((await settledCount()) - before).toBe(2);
  });

  it('does not apply an event twice when its lock expires mid-processing, and the first release keeps the second lock', async () => {
    const lockTimeoutMs = 150;
    const webhooks = createModules(ctx.infra, { stripeEvents: { lockTimeoutMs } }).stripeEvents;
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.completed(fx);
    expect(await webhooks.recordEvent(StripeEventSchema.parse(e))).toBe(true);

    const slow = (entered: () => void, held: Promise<void>) => async (): Promise<ProcessResult> => {
      entered();
      await held;
      return webhooks.processEvent(e.id, e.type);
    };
    const firstIn = gate();
    const firstHeld = gate();
    const first = webhooks.idempotency.handleEventWithIdempotency(
      e.id,
      e.type,
      slow(firstIn.open, firstHeld.opened),
    );
    await firstIn.opened;
    // The first holder stalls past its lock's lifetime, so a second delivery may take the event over.
    await new Promise((r) => setTimeout(r, lockTimeoutMs * 3));
    const secondIn = gate();
    const secondHeld = gate();
    // The second delivery lands on an instance with the normal 30 s lock, so its lock cannot lapse while the
    // test looks at it, however slow the machine.
    const second = ctx.modules.stripeEvents.idempotency.handleEventWithIdempotency(
      e.id,
      e.type,
      slow(secondIn.open, secondHeld.opened),
    );
    await secondIn.opened;

    firstHeld.open();
    const firstOutcome = await first;
    expect(firstOutcome).toMatchObject({
      kind: 'processed',
      result: { status: 'done', settledBefore: false },
    });
    // The first holder released with its own token: the second holder's lock is still in place.
    expect(await webhooks.idempotency.acquireEventLock(e.id)).toBeNull();

    secondHeld.open();
    expect(await second).toEqual({ kind: 'duplicate' });
    const done = await effects(fx.id, e.id);
    expect(done.transitions).toEqual([{ seq: 2, to_status: 'paid' }]);
    expect(done.outbox).toBe(1);
    // The second holder released its own lock on the way out.
    const after = await webhooks.idempotency.acquireEventLock(e.id);
    expect(after).not.toBeNull();
    await webhooks.idempotency.releaseEventLock(e.id, after!);
  });

  it('applies one event delivered 50 times across three service processes sharing PostgreSQL and Redis exactly once', async (test) => {
    if (backend !== 'postgres' || !ctx.testDb.schema) {
      console.warn('SKIPPED on PGlite: three processes cannot share one in-process PGlite database');
      test.skip();
      return;
    }
    const emulator = await startStripeEmulator({ port: 0 });
    const children: ChildProcess[] = [];
    try {
      const ports = await Promise.all([freePort(), freePort(), freePort()]);
      for (const port of ports) {
        children.push(
          cliProcess(['serve'], {
            DATABASE_URL: urlWithSchema(ctx.testDb.schema),
            REDIS_URL: TEST_REDIS_URL,
            STRIPE_API_BASE: emulator.url,
            STRIPE_WEBHOOK_SECRET: SECRET,
            PORT: String(port),
          }),
        );
      }
      await Promise.all(ports.map((port) => waitForHealth(port)));
      const urls = ports.map((port) => `http://127.0.0.1:${port}`);
      const fx = orderFixture();
      await createOrderFor(ctx.testDb.db, fx);
      const e = events.completed(fx);
      const answers = await storm(urls, e);
      expect(answers.every((a) => a.status === 200)).toBe(true);
      expect(answers.filter((a) => a.body.status === 'processed')).toHaveLength(1);
      await expectAppliedOnce(fx.id, e.id);

      const stuck = await recordedButUnprocessed();
      const retried = await storm(urls, stuck.e);
      expect(retried.every((a) => a.status === 200 && a.body.status === 'duplicate')).toBe(true);
      await expectAppliedOnce(stuck.fx.id, stuck.e.id);
    } finally {
      await Promise.all(children.map(stop));
      await emulator.close();
    }
  }, 90_000);
});

async function waitForHealth(port: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`payments-service serve on port ${port} did not become healthy`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}
