import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromPg } from '../../src/adapters/postgres.js';
import { composeInfra, type Infra } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';
import { type RunningWorkers, startWorkers } from '../../src/jobs/index.js';
import { createModules, moduleWorkers } from '../../src/modules.js';
import { type RunningStripeEmulator, startStripeEmulator } from '../../stripe-emulator/index.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';
import { TEST_DATABASE_URL } from '../helpers/services.js';

/** A short period, so that a few seconds hold several; every instance asks ten times as often. */
const PERIOD_MS = 1_000;
const SCHEDULE = { everyMs: PERIOD_MS, firstWindowMs: 60 * 60_000, overlapMs: 0, settleSeconds: 0 };
const INSTANCES = 3;

/** An HTTP proxy in front of the emulator that notes every listing of Stripe's events and its window. */
async function listingProxy(target: string) {
  const listings: Array<{ at: number; gte: number }> = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', target);
    if (req.method === 'GET' && url.pathname === '/v1/events')
      listings.push({ at: Date.now(), gte: Number(url.searchParams.get('created[gte]')) });
    const forward = request(url, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    listings,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.each(BACKENDS)('periodic jobs on %s', (backend) => {
  let testDb: TestDb;
  let emulator: RunningStripeEmulator;
  let proxy: Awaited<ReturnType<typeof listingProxy>>;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
    emulator = await startStripeEmulator({ port: 0 });
    proxy = await listingProxy(emulator.url);
  });
  afterAll(async () => {
    await proxy?.close();
    await emulator?.close();
    await testDb?.close();
  });

  /** `n` instances of the service's background work, each with its own dependencies, on one database. */
  async function instances(n: number): Promise<{ stop(): Promise<void> }> {
    const running: Array<{ infra: Infra; workers: RunningWorkers }> = [];
    for (let i = 0; i < n; i++) {
      const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent', STRIPE_API_BASE: proxy.url });
      // Each PostgreSQL instance has a pool of its own; PGlite has one connection, shared as it must be.
      const db =
        backend === 'postgres'
          ? fromPg({ connectionString: TEST_DATABASE_URL, schema: testDb.schema! })
          : testDb.db;
      const infra = await composeInfra(config, { db });
      const modules = createModules(infra, { reconcileSchedule: SCHEDULE, periodicCheckMs: PERIOD_MS / 10 });
      const reconciliation = moduleWorkers(modules).filter((w) => w.name === 'stripe-reconciliation');
      running.push({ infra, workers: startWorkers(reconciliation, infra.log) });
    }
    return {
      async stop() {
        for (const r of running) await r.workers.stop();
        for (const r of running) {
          await r.infra.close();
          if (backend === 'postgres') await r.infra.db.close();
        }
      },
    };
  }

  it('runs the reconciliation once per period across three instances, and continues its window after a restart', async () => {
    const started = Date.now();
    const first = await instances(INSTANCES);
    await new Promise((r) => setTimeout(r, 4.5 * PERIOD_MS));
    await first.stop();
    const elapsed = Date.now() - started;
    const runs = proxy.listings.length;
    // Once per period: about elapsed / period runs in all, where three uncoordinated instances would make
    // three times as many.
    expect(runs).toBeGreaterThanOrEqual(3);
    expect(runs).toBeLessThanOrEqual(Math.ceil(elapsed / PERIOD_MS) + 1);
    const job = await testDb.db.query<{ runs: number; last_success_started_at: Date }>(
      `select runs, last_success_started_at from periodic_jobs where name = 'stripe-reconciliation'`,
    );
    expect(job.rows[0]?.runs).toBe(runs);
    for (let i = 1; i < runs; i++) {
      // A period apart, give or take the instances' polling; each window starts where the last run started.
      expect(proxy.listings[i]!.at - proxy.listings[i - 1]!.at).toBeGreaterThanOrEqual(PERIOD_MS - 150);
      expect(proxy.listings[i]!.gte).toBeGreaterThanOrEqual(Math.floor(proxy.listings[i - 1]!.at / 1000) - 1);
    }
    // Only the very first run looked back the first window (an hour here).
    expect(proxy.listings[0]!.gte).toBeLessThanOrEqual(
      Math.floor((started - SCHEDULE.firstWindowMs) / 1000) + 5,
    );

    // A restart of every instance: the next run continues from the last one, it does not look back an hour.
    const lastStart = new Date(job.rows[0]!.last_success_started_at).getTime();
    const second = await instances(INSTANCES);
    const deadline = Date.now() + 5 * PERIOD_MS;
    while (proxy.listings.length === runs && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    await second.stop();
    expect(proxy.listings.length).toBeGreaterThan(runs);
    expect(proxy.listings[runs]!.gte).toBe(Math.floor(lastStart / 1000));
  });
});
