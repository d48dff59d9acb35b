/**
 * One measured phase against running `serve` processes: the load, the time until every event is applied, CPU
 * of the service and of PostgreSQL, peak memory, and what the database and Redis counted meanwhile.
 */
import type { Redis } from 'ioredis';
import pg from 'pg';
import { postgresCpu, postgresCpuDelta, sleep } from './common.js';
import type { LoadJob, LoadResult } from './load.js';
import {
  countStatus,
  type LoadProcess,
  type Serve,
  serveCpu,
  servePeakMiB,
  waitForStatus,
} from './service.js';

export interface Counters {
  xact_commit: number;
  rows: Record<string, { ins: number; upd: number; del: number }>;
  redis: Record<string, number>;
}

async function dbCounters(url: string): Promise<Omit<Counters, 'redis'>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const x = await client.query<{ n: string }>(
      'select xact_commit as n from pg_stat_database where datname = current_database()',
    );
    const t = await client.query<{ relname: string; ins: string; upd: string; del: string }>(
      'select relname, n_tup_ins as ins, n_tup_upd as upd, n_tup_del as del from pg_stat_user_tables',
    );
    const rows: Counters['rows'] = {};
    for (const r of t.rows) rows[r.relname] = { ins: Number(r.ins), upd: Number(r.upd), del: Number(r.del) };
    return { xact_commit: Number(x.rows[0]?.n ?? 0), rows };
  } finally {
    await client.end();
  }
}

async function redisCounters(redis: Redis | undefined): Promise<Record<string, number>> {
  if (!redis) return {};
  const info = await redis.info('commandstats');
  const calls: Record<string, number> = {};
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

export const counters = async (url: string, redis: Redis | undefined): Promise<Counters> => ({
  ...(await dbCounters(url)),
  redis: await redisCounters(redis),
});

/** Per-event deltas; the bench's own polling transactions (`ownTransactions`) are taken out. */
export function perEvent(before: Counters, after: Counters, events: number, ownTransactions: number) {
  const rows: Record<string, string> = {};
  for (const [table, a] of Object.entries(after.rows)) {
    const b = before.rows[table] ?? { ins: 0, upd: 0, del: 0 };
    const parts = (['ins', 'upd', 'del'] as const)
      .map((k) => [k, (a[k] - b[k]) / events] as const)
      .filter(([, v]) => v >= 0.005)
      .map(([k, v]) => `${k} ${v.toFixed(2)}`);
    if (parts.length) rows[table] = parts.join(', ');
  }
  const redis: Record<string, number> = {};
  let redisTotal = 0;
  for (const [cmd, calls] of Object.entries(after.redis)) {
    if (cmd === 'info') continue;
    const d = calls - (before.redis[cmd] ?? 0);
    if (d / events >= 0.005) redis[cmd] = Number((d / events).toFixed(2));
    redisTotal += d;
  }
  return {
    transactions: Number(((after.xact_commit - before.xact_commit - ownTransactions) / events).toFixed(2)),
    redis_commands: Number((redisTotal / events).toFixed(2)),
    redis,
    rows,
  };
}

export interface PhaseResult {
  label: string;
  instances: number;
  load: LoadResult;
  /** Seconds from the first send until every event was applied (null: not all were, or nothing to apply). */
  applied_seconds: number | null;
  applied_per_second: number | null;
  service_cpu_ms_per_event: number;
  postgres_cpu_ms_per_event: number | null;
  peak_memory_mib: number;
  per_event?: ReturnType<typeof perEvent>;
}

export interface PhaseSetup {
  load: LoadProcess;
  serves: Serve[];
  /** PostgreSQL: the scratch database's URL, for the applied poll and the counters; absent on PGlite. */
  databaseUrl?: string;
  redis?: Redis;
  /** PGlite: how many events are applied so far (read from the service itself). */
  readApplied?: () => Promise<number>;
}

/** Runs `job` against `setup.serves`, waits until `expect` orders read that status, then stops the serves. */
export async function measurePhase(
  label: string,
  setup: PhaseSetup,
  job: LoadJob,
  expect: string | null,
): Promise<PhaseResult> {
  const pool = setup.databaseUrl ? new pg.Pool({ connectionString: setup.databaseUrl, max: 1 }) : undefined;
  try {
    const before = setup.databaseUrl ? await counters(setup.databaseUrl, setup.redis) : undefined;
    const cpu0 = serveCpu(setup.serves);
    const pg0 = postgresCpu();
    const load = await setup.load.run(job);
    let polls = 0;
    const read = pool ? countStatus(pool, job.prefix, expect ?? '') : setup.readApplied;
    const appliedAt =
      expect && read
        ? await waitForStatus(async () => {
            polls++;
            return read();
          }, job.count)
        : null;
    const cpu = serveCpu(setup.serves) - cpu0;
    const pgCpu = postgresCpuDelta(pg0, postgresCpu());
    const peak = servePeakMiB(setup.serves);
    for (const s of setup.serves) await s.stop();
    await sleep(300);
    const applied = appliedAt === null ? null : (appliedAt - load.started_at) / 1000;
    const events = expect ? job.count : load.ok;
    const result: PhaseResult = {
      label,
      instances: setup.serves.length,
      load,
      applied_seconds: applied,
      applied_per_second: applied ? job.count / applied : null,
      service_cpu_ms_per_event: (cpu * 1000) / events,
      postgres_cpu_ms_per_event: setup.databaseUrl ? (pgCpu * 1000) / events : null,
      peak_memory_mib: peak,
    };
    if (setup.databaseUrl && before) {
      result.per_event = perEvent(before, await counters(setup.databaseUrl, setup.redis), events, polls);
    }
    return result;
  } finally {
    await pool?.end();
  }
}
