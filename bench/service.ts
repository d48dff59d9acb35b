/**
 * The real parts the bench runs the service on: a scratch database, a private Redis (so its command counts are
 * the bench's alone), a Stripe emulator process, `serve` processes of the built CLI, and the load process.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { fromPg } from '../src/adapters/postgres.js';
import { migrate } from '../src/db/migrate.js';
import type { Db } from '../src/ports/db.js';
import { randomBase62 } from '../src/shared/ids.js';
import { freePort } from '../test/helpers/cli.js';
import { createOrderFor } from '../test/helpers/stripe-events.js';
import {
  BENCH_SECRET,
  benchIds,
  CLI,
  cpuSeconds,
  onCleanup,
  PG_ADMIN_URL,
  peakMemoryMiB,
  ROOT,
  sleep,
  startProcess,
  stopChild,
} from './common.js';
import type { LoadJob, LoadResult } from './load.js';

export async function adminQuery<R = Record<string, unknown>>(sql: string, url = PG_ADMIN_URL): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows as R[];
  } finally {
    await client.end();
  }
}

/** A fresh database, dropped at cleanup (with force: a serve that hangs on cannot keep it). */
export async function scratchDatabase(
  label: string,
): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const name = `bench_${label}_${randomBase62(8).toLowerCase()}`;
  await adminQuery(`create database ${name}`);
  const drop = onCleanup(`database ${name}`, () =>
    adminQuery(`drop database if exists ${name} with (force)`),
  );
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return { name, url: url.toString(), drop };
}

export async function privateRedis(): Promise<{ url: string; client: Redis }> {
  const port = await freePort();
  await startProcess(
    'redis-server',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
    /Ready to accept connections/,
  );
  const client = new Redis(`redis://127.0.0.1:${port}`);
  onCleanup('redis client', async () => client.disconnect());
  return { url: `redis://127.0.0.1:${port}`, client };
}

export async function stripeEmulator(): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  const p = await startProcess(
    'stripe-emulator',
    process.execPath,
    [CLI, 'stripe-emulator', '--port', String(port)],
    {},
    /listening/,
  );
  return { url: `http://127.0.0.1:${port}`, pid: p.child.pid ?? 0 };
}

export interface Serve {
  url: string;
  child: ChildProcess;
  stop: () => Promise<void>;
}

const UNLIMITED = '1000000000';

/** `payments-service serve` from the built CLI; on PostgreSQL + Redis, or PGlite in `dataDir` when no database. */
export async function startServe(opts: {
  databaseUrl?: string;
  dataDir?: string;
  redisUrl?: string;
  stripeApiBase?: string;
}): Promise<Serve> {
  const port = await freePort();
  const env: Record<string, string> = {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    PORT: String(port),
    GRPC_PORT: '0',
    STRIPE_WEBHOOK_SECRET: BENCH_SECRET,
    STRIPE_EMULATOR_PORT: String(await freePort()),
    RATE_LIMIT_PER_KEY: UNLIMITED,
    RATE_LIMIT_PER_ADDRESS: UNLIMITED,
    RATE_LIMIT_WEBHOOK: UNLIMITED,
    ...(opts.databaseUrl ? { DATABASE_URL: opts.databaseUrl } : { DATA_DIR: opts.dataDir ?? '' }),
    ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}),
    ...(opts.stripeApiBase
      ? { STRIPE_API_BASE: opts.stripeApiBase, STRIPE_SECRET_KEY: 'sk_test_bench' }
      : {}),
  };
  // BENCH_SERVE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles every serve process of the run.
  const nodeArgs = (process.env.BENCH_SERVE_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const p = await startProcess(
    `serve:${port}`,
    process.execPath,
    [...nodeArgs, CLI, 'serve'],
    env,
    /listening on/,
  );
  return { url: `http://127.0.0.1:${port}`, child: p.child, stop: p.stop };
}

/** Serve processes' CPU seconds so far and their peak memory. */
export const serveCpu = (serves: Serve[]) => serves.reduce((s, x) => s + cpuSeconds(x.child.pid ?? 0), 0);
export const servePeakMiB = (serves: Serve[]) =>
  Math.max(0, ...serves.map((x) => peakMemoryMiB(x.child.pid ?? 0)));

/** An admin key made by `payments-service keys create` against the same database. */
export function adminKey(databaseUrl: string): string {
  const out = execFileSync(process.execPath, [CLI, 'keys', 'create', '--role', 'admin', '--json'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
  });
  return `Bearer ${(JSON.parse(out.toString()) as { key: string }).key}`;
}

/** Migrates and creates the orders `prefix`'s events will pay, through the orders module as checkout would. */
export async function seedOrders(db: Db, prefix: string, from: number, count: number, concurrency = 8) {
  await migrate(db);
  let next = from;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < from + count) await createOrderFor(db, benchIds(prefix, next++));
    }),
  );
}

export async function seedPg(url: string, prefix: string, from: number, count: number) {
  const db = fromPg({ connectionString: url, max: 8 });
  try {
    await seedOrders(db, prefix, from, count);
  } finally {
    await db.close();
  }
}

/** Polls until `count` orders of `prefix` read `status`; the epoch ms when they did, or null after the timeout. */
export async function waitForStatus(
  read: () => Promise<number>,
  count: number,
  timeoutMs = 120_000,
): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((await read()) >= count) return Date.now();
    await sleep(100);
  }
  return null;
}

export const countStatus = (client: pg.Pool, prefix: string, status: string) => async () =>
  Number(
    (
      await client.query<{ n: string }>(`select count(*) as n from orders where id like $1 and status = $2`, [
        `ord\\_${prefix}\\_%`,
        status,
      ])
    ).rows[0]?.n ?? 0,
  );

export interface LoadProcess {
  run(job: LoadJob): Promise<LoadResult>;
  pid: number;
}

/** The load generator's own process (bench/load.ts under tsx), kept for the whole run. */
export async function startLoad(): Promise<LoadProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', 'load.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  onCleanup('load process', () => stopChild(child));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the load process exited (${code})`)));
  });
  return {
    pid: child.pid ?? 0,
    run: (job) =>
      new Promise((resolve, reject) => {
        child.once('message', (m: { result?: LoadResult; error?: string }) =>
          m.result ? resolve(m.result) : reject(new Error(`load: ${m.error}`)),
        );
        child.send(job);
      }),
  };
}
