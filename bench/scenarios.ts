/** The service's scenarios: each on fresh `serve` processes and a scratch database of its own. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { fromPglite } from '../src/adapters/pglite.js';
import { BENCH_SECRET, cpuSeconds, onCleanup } from './common.js';
import type { LoadJob, LoadResult, LoopMode } from './load.js';
import { measurePhase, type PhaseResult } from './measure.js';
import {
  adminKey,
  type LoadProcess,
  type Serve,
  scratchDatabase,
  seedOrders,
  seedPg,
  startServe,
} from './service.js';

export interface Env {
  load: LoadProcess;
  redis: { url: string; client: Redis };
  emulator: { url: string; pid: number };
  counts: { events: number; checkout: number; openSeconds: number; rates: number[] };
}

const closed: LoopMode = { loop: 'closed', concurrency: 32 };

async function serves(env: Env, databaseUrl: string, n: number): Promise<Serve[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      startServe({ databaseUrl, redisUrl: env.redis.url, stripeApiBase: env.emulator.url }),
    ),
  );
}

const webhookJob = (
  targets: Serve[],
  prefix: string,
  count: number,
  event: 'completed' | 'refunded',
  mode: LoopMode = closed,
): LoadJob => ({
  kind: 'webhooks',
  targets: targets.map((s) => s.url),
  secret: BENCH_SECRET,
  prefix,
  from: 0,
  count,
  event,
  mode,
});

/** New completions on `instances` serve processes, closed loop at 32. */
export async function newEvents(env: Env, instances: number): Promise<PhaseResult> {
  const db = await scratchDatabase(`i${instances}`);
  try {
    const prefix = `n${instances}`;
    await seedPg(db.url, prefix, 0, env.counts.events);
    const s = await serves(env, db.url, instances);
    return await measurePhase(
      `new completions, ${instances} instance${instances > 1 ? 's' : ''}`,
      { load: env.load, serves: s, databaseUrl: db.url, redis: env.redis.client },
      webhookJob(s, prefix, env.counts.events, 'completed'),
      'paid',
    );
  } finally {
    await db.drop();
  }
}

/** One instance: new completions, then partial refunds of a tenth of them, then every completion again. */
export async function webhooks(env: Env): Promise<PhaseResult[]> {
  const db = await scratchDatabase('webhooks');
  try {
    const n = env.counts.events;
    await seedPg(db.url, 'w', 0, n);
    const phase = async (
      label: string,
      count: number,
      event: 'completed' | 'refunded',
      expect: string | null,
    ) => {
      const s = await serves(env, db.url, 1);
      return measurePhase(
        label,
        { load: env.load, serves: s, databaseUrl: db.url, redis: env.redis.client },
        webhookJob(s, 'w', count, event),
        expect,
      );
    };
    const fresh = await phase('new completions, 1 instance', n, 'completed', 'paid');
    const refunds = await phase(
      'partial refunds (charge.refunded)',
      Math.ceil(n / 10),
      'refunded',
      'partially_refunded',
    );
    const duplicates = await phase('duplicates (same events again)', n, 'completed', null);
    return [fresh, refunds, duplicates];
  } finally {
    await db.drop();
  }
}

/** Open loop at fixed arrival rates, one instance; each rate on its own orders. */
export async function openLoop(env: Env): Promise<PhaseResult[]> {
  const db = await scratchDatabase('open');
  const out: PhaseResult[] = [];
  try {
    for (const rate of env.counts.rates) {
      const prefix = `o${rate}`;
      const count = rate * env.counts.openSeconds;
      await seedPg(db.url, prefix, 0, count);
      const s = await serves(env, db.url, 1);
      out.push(
        await measurePhase(
          `open loop ${rate}/s`,
          { load: env.load, serves: s, databaseUrl: db.url, redis: env.redis.client },
          webhookJob(s, prefix, count, 'completed', { loop: 'open', rate }),
          'paid',
        ),
      );
    }
    return out;
  } finally {
    await db.drop();
  }
}

/** Applied events as the service's /metrics counts them (PGlite: the driver cannot open the data directory). */
const processedCount = (url: string) => async () => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = /^webhook_events_processed_total\{type="checkout.session.completed"\} (\d+)/m.exec(text);
  return Number(m?.[1] ?? 0);
};

/** The single-process default: PGlite in a temp dir, in-process lock, the embedded emulator. */
export async function pglite(env: Env): Promise<PhaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-pglite-'));
  const remove = onCleanup('PGlite data dir', async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const n = env.counts.events;
    const seedDb = await fromPglite(dir);
    await seedOrders(seedDb, 'p', 0, n, 1);
    await seedDb.close();
    const s = await startServe({ dataDir: dir });
    const result = await measurePhase(
      'new completions, PGlite',
      { load: env.load, serves: [s], readApplied: processedCount(s.url) },
      webhookJob([s], 'p', n, 'completed'),
      'paid',
    );
    const check = await fromPglite(dir);
    const paid = await check.query<{ n: number }>(
      `select count(*)::int as n from orders where status = 'paid'`,
    );
    await check.close();
    if (paid.rows[0]?.n !== n) result.label += ` (only ${paid.rows[0]?.n} of ${n} orders read paid)`;
    return result;
  } finally {
    await remove();
  }
}

export interface CheckoutResult {
  service: LoadResult;
  bare: LoadResult;
  service_cpu_ms_per_session: number;
  emulator_cpu_ms_per_session: number;
  bare_emulator_cpu_ms_per_session: number;
  ratio: number;
}

/** `POST /v1/checkout/sessions` through the service against the same number of direct creations at the emulator. */
export async function checkout(env: Env): Promise<CheckoutResult> {
  const db = await scratchDatabase('checkout');
  try {
    const [s] = await serves(env, db.url, 1);
    const bearer = adminKey(db.url);
    const count = env.counts.checkout;
    const job = { prefix: 'ck', from: 0, count, mode: closed };
    const emu0 = cpuSeconds(env.emulator.pid);
    const cpu0 = cpuSeconds(s!.child.pid ?? 0);
    const service = await env.load.run({ ...job, kind: 'checkout', targets: [s!.url], bearer });
    const cpu = cpuSeconds(s!.child.pid ?? 0) - cpu0;
    const emu1 = cpuSeconds(env.emulator.pid);
    await s!.stop();
    const bare = await env.load.run({
      ...job,
      prefix: 'bare',
      kind: 'emulator-create',
      base: env.emulator.url,
    });
    const emu2 = cpuSeconds(env.emulator.pid);
    return {
      service,
      bare,
      service_cpu_ms_per_session: (cpu * 1000) / Math.max(1, service.ok),
      emulator_cpu_ms_per_session: ((emu1 - emu0) * 1000) / Math.max(1, service.ok),
      bare_emulator_cpu_ms_per_session: ((emu2 - emu1) * 1000) / Math.max(1, bare.ok),
      ratio: service.ack_per_second / bare.ack_per_second,
    };
  } finally {
    await db.drop();
  }
}
