import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type Stripe from 'stripe';
import type { RunningStripeEmulator } from '../stripe-emulator/index.js';
import { memoryKv, memoryLock } from './adapters/memory.js';
import { fromPglite } from './adapters/pglite.js';
import { fromPg } from './adapters/postgres.js';
import { createRedisClient, redisKv, redisLock } from './adapters/redis.js';
import { createStripeClient, EMULATOR_SECRET_KEY } from './adapters/stripe.js';
import type { Config } from './config.js';
import { defaultRedisKeyPrefix, derivedSecret } from './db/identity.js';
import { migrate } from './db/migrate.js';
import { createLogger } from './logger.js';
import type { Db } from './ports/db.js';
import type { Kv } from './ports/kv.js';
import type { Lock } from './ports/lock.js';
import { createRegistry } from './shared/metrics.js';

/** Everything outside the process the service talks to, picked once from the configuration. */
export interface Infra {
  config: Config;
  db: Db;
  lock: Lock;
  kv: Kv;
  redis: Redis | undefined;
  /** What every Redis key of this deployment starts with (REDIS_KEY_PREFIX, or derived from the database). */
  redisKeyPrefix: string;
  /** The secret IPs are hashed with: REFERRAL_IP_SALT, or outside production one derived from the database. */
  referralIpSalt: string;
  /**
   * Signs the dashboard's session and CSRF cookies. Derived from the database: the session itself lives in the
   * database under a random id, so the signature adds a check, not the secrecy the session rests on.
   */
  dashboardSecret: string;
  stripe: Stripe;
  /** Secrets that webhook signatures are checked against (the configured ones, or the emulator's). */
  webhookSecrets: readonly string[];
  emulator: RunningStripeEmulator | undefined;
  /** The process's metrics registry; each module declares its own metrics on it. */
  registry: Registry;
  /** The process's one logger (pino); requests log through Fastify's child loggers of it. */
  log: Logger;
  /** Readiness probes by name; each resolves when its dependency answers. */
  checks: Record<string, () => Promise<unknown>>;
  close(): Promise<void>;
}

export interface ComposeOptions {
  /** Use this database instead of the configured one (tests hand in a schema of their own). */
  db?: Db;
  /** Apply pending migrations at start: the embedded defaults do; production runs `migrate` as its own step. */
  migrate?: boolean;
  /** Start the embedded emulator when no Stripe is configured (off for `migrate`, `keys`, …). */
  startEmulator?: boolean;
}

export async function composeInfra(config: Config, opts: ComposeOptions = {}): Promise<Infra> {
  const closers: Array<() => Promise<unknown>> = [];
  try {
    const db = opts.db ?? (await openDatabase(config));
    if (!opts.db) closers.push(() => db.close());
    if (opts.migrate) await migrate(db);

    const redis = config.redisUrl ? createRedisClient(config.redisUrl) : undefined;
    if (redis) {
      // Outages surface as failed commands, which callers handle; without a listener ioredis would also print them.
      redis.on('error', () => {});
      closers.push(() => redis.quit().catch(() => redis.disconnect()));
    }

    let emulator: RunningStripeEmulator | undefined;
    let webhookSecrets = config.webhookSecrets;
    let stripe: Stripe;
    if (config.embeddedEmulator && opts.startEmulator) {
      // The emulator signs with a secret we generate, unless the operator fixed one.
      const webhookSecret = webhookSecrets[0] ?? `whsec_${randomBytes(24).toString('base64')}`;
      // Loaded only here: a service configured for Stripe never loads the emulator's code.
      const { startStripeEmulator } = await import('../stripe-emulator/index.js');
      emulator = await startStripeEmulator({
        port: config.stripeEmulatorPort,
        webhookUrl: `${config.publicUrl}/webhooks/stripe`,
        webhookSecret,
      });
      const running = emulator;
      closers.push(() => running.close());
      webhookSecrets = [webhookSecret, ...webhookSecrets.slice(1)];
      stripe = createStripeClient(EMULATOR_SECRET_KEY, emulator.url);
    } else if (config.embeddedEmulator) {
      // `worker`, `reconcile`, `events replay` beside a `serve` on embedded defaults: the emulator is the one
      // that `serve` runs. Were it down, calls fail as unreachable (retried later), never as refused.
      stripe = createStripeClient(EMULATOR_SECRET_KEY, `http://127.0.0.1:${config.stripeEmulatorPort}`);
    } else {
      stripe = createStripeClient(config.stripeSecretKey ?? EMULATOR_SECRET_KEY, config.stripeApiBase);
    }

    const checks: Infra['checks'] = { database: () => db.query('select 1') };
    if (redis) checks.redis = () => redis.ping();
    const redisKeyPrefix = config.redisKeyPrefix ?? (await defaultRedisKeyPrefix(db));
    const referralIpSalt = config.referralIpSalt ?? (await derivedSecret(db, 'referral-ip-salt'));
    const dashboardSecret = await derivedSecret(db, 'dashboard-cookies');
    return {
      config,
      db,
      lock: redis ? redisLock(redis, `${redisKeyPrefix}lock:`) : memoryLock(),
      kv: redis ? redisKv(redis, redisKeyPrefix) : memoryKv(),
      redis,
      redisKeyPrefix,
      referralIpSalt,
      dashboardSecret,
      stripe,
      webhookSecrets,
      emulator,
      registry: createRegistry(),
      log: createLogger(config.logLevel),
      checks,
      async close() {
        for (const close of closers.reverse()) await close().catch(() => {});
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw err;
  }
}

async function openDatabase(config: Config): Promise<Db> {
  if (config.databaseUrl) return fromPg({ connectionString: config.databaseUrl });
  mkdirSync(config.dataDir, { recursive: true });
  return fromPglite(config.dataDir);
}
