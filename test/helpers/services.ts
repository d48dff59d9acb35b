import { Redis } from 'ioredis';
import pg from 'pg';

/**
 * Gating for suites that need real servers (CONTRACT §7): a missing server fails the run in CI, and locally
 * skips the suite with one line saying what to start, so `npm test` stays usable on a laptop without them.
 */

export const TEST_DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

// A server on 127.0.0.1 or the CI network answers in milliseconds; two seconds is ample for a slow CI box
// while keeping the cost of an absent server small, since every gated test file pays it once.
const PROBE_TIMEOUT_MS = 2_000;

// One probe per server per test file, so suites in the same file share the answer and the line prints once.
let redisProbe: Promise<boolean> | undefined;
let postgresProbe: Promise<boolean> | undefined;

/** Resolves true when reachable. When unreachable: throws if process.env.CI is set; else prints ONE loud line naming what to start, and resolves false. */
export async function redisAvailable(): Promise<boolean> {
  redisProbe ??= probe('Redis', TEST_REDIS_URL, 'redis-server --daemonize yes', pingRedis);
  return redisProbe;
}

/** Resolves true when reachable. When unreachable: throws if process.env.CI is set; else prints ONE loud line naming what to start, and resolves false. */
export async function postgresAvailable(): Promise<boolean> {
  postgresProbe ??= probe(
    'PostgreSQL',
    TEST_DATABASE_URL,
    'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    selectOne,
  );
  return postgresProbe;
}

async function probe(
  name: string,
  url: string,
  startCommand: string,
  reach: (url: string) => Promise<void>,
): Promise<boolean> {
  try {
    await reach(url);
    return true;
  } catch (error) {
    const problem = `${name} at ${redact(url)} is unreachable`;
    if (inCi())
      throw new Error(`${problem} and CI is set, so its suites may not be skipped`, { cause: error });
    console.warn(`SKIPPED: ${problem}; start it with: ${startCommand}`);
    return false;
  }
}

async function pingRedis(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
    // One attempt: a probe that reconnects in the background would outlive the question it answers.
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  // connect() rejects with a bare "Connection is closed"; the socket error (ECONNREFUSED, ENOTFOUND) arrives
  // as an event, and is the one worth showing.
  let socketError: unknown;
  redis.on('error', (error) => {
    socketError = error;
  });
  try {
    await redis.connect();
    const reply = await redis.ping();
    if (reply !== 'PONG') throw new Error(`PING answered ${reply}`);
  } catch (error) {
    throw socketError ?? error;
  } finally {
    redis.disconnect();
  }
}

async function selectOne(url: string): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('select 1');
  } finally {
    await client.end().catch(() => {});
  }
}

// CI systems set CI=true; treating "false" and "0" as unset keeps a developer's `CI=false` from failing runs.
function inCi(): boolean {
  const ci = process.env.CI;
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

// The URL may carry a password; the skip line and the CI error end up in logs.
function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable URL)';
  }
}
