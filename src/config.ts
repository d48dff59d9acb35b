import { z } from 'zod';
import type { RateLimits } from './modules/rate-limits/index.js';
import { type FraudConfig, FraudConfigError, loadFraudConfig } from './modules/referrals/index.js';

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));
const port = z.coerce.number().int().min(0).max(65535);

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  PORT: port.default(3000),
  HOST: z.string().default('127.0.0.1'),
  PUBLIC_URL: optionalText,
  DATABASE_URL: optionalText,
  DATA_DIR: z.string().default('./.data'),
  REDIS_URL: optionalText,
  REDIS_KEY_PREFIX: optionalText.refine((v) => v === undefined || /^[A-Za-z0-9:_.{}-]{1,64}$/.test(v), {
    message: 'must be 1-64 of A-Z a-z 0-9 : _ . { } -',
  }),
  // Requests per minute (CONTRACT §3, 429 rate_limited). An API key, a client address on every route but the
  // probes and the webhook, and Stripe's deliveries per sending address, which come in bursts.
  RATE_LIMIT_PER_KEY: z.coerce.number().int().positive().default(600),
  RATE_LIMIT_PER_ADDRESS: z.coerce.number().int().positive().default(1200),
  RATE_LIMIT_WEBHOOK: z.coerce.number().int().positive().default(12_000),
  STRIPE_SECRET_KEY: optionalText.refine((v) => v === undefined || /^(sk|rk)_(test|live)_/.test(v), {
    message: 'must start with sk_test_, sk_live_, rk_test_ or rk_live_',
  }),
  // Checked by urlProblems below, which sees NODE_ENV too.
  STRIPE_API_BASE: optionalText,
  STRIPE_EMULATOR_PORT: port.default(12111),
  STRIPE_WEBHOOK_SECRET: optionalText,
  // Stripe's own libraries default to 300 s; 0 would accept a captured request forever, so it is refused.
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().positive().default(300),
  ORDERS_WEBHOOK_URL: optionalText,
  ORDERS_WEBHOOK_SECRET: optionalText.refine((v) => v === undefined || v.startsWith('whsec_'), {
    message: 'must be a whsec_ secret',
  }),
  COMMISSION_HOLD_DAYS: z.coerce.number().int().min(0).max(365).default(30),
  // The secret IPs are hashed with before the referral programme keeps them (clicks, fraud guards).
  REFERRAL_IP_SALT: optionalText.refine((v) => v === undefined || v.length >= 16, {
    message: 'must be at least 16 characters',
  }),
  // Checked by urlProblems below.
  STOREFRONT_URL: optionalText,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = Readonly<{
  nodeEnv: 'development' | 'test' | 'production';
  port: number;
  host: string;
  publicUrl: string;
  databaseUrl: string | undefined;
  dataDir: string;
  redisUrl: string | undefined;
  /** Set, what every Redis key starts with; unset, one derived from the database (src/db/identity.ts). */
  redisKeyPrefix: string | undefined;
  rateLimits: Readonly<RateLimits>;
  stripeSecretKey: string | undefined;
  stripeApiBase: string | undefined;
  stripeEmulatorPort: number;
  /** Every accepted signing secret; more than one while a secret is being rotated. */
  webhookSecrets: readonly string[];
  webhookToleranceSeconds: number;
  /** The Orders service's endpoint and the `whsec_` secret to sign with; unset, no notification is sent. */
  ordersWebhook: Readonly<{ url: string; secret: string }> | undefined;
  commissionHoldDays: number;
  /** Unset outside production: one is derived from the database (src/db/identity.ts). */
  referralIpSalt: string | undefined;
  /** Where `/r/:code` sends visitors: STOREFRONT_URL, or the storefront demo at PUBLIC_URL. */
  storefrontUrl: string;
  fraud: FraudConfig;
  logLevel: string;
  /** Stripe is the embedded emulator: no secret key and no external API base. */
  embeddedEmulator: boolean;
}>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/**
 * The settings that name an HTTP endpoint. Any other scheme (`file:`, `ftp:`, a typo) is a mistake, and none
 * may carry credentials: these values are printed at start, handed to the emulator and quoted by fetch
 * errors, so a password in one would travel with it. Plain http is refused in production where the service
 * itself sends something over the network: order notifications carry buyers' data, and a signature does not
 * hide a payload from the network. STRIPE_API_BASE is refused outright in production; PUBLIC_URL is only where
 * links point (the emulator's webhook, the one request sent to it, is never used in production). DATABASE_URL
 * and REDIS_URL are not here: their schemes are their drivers' business and they legitimately carry
 * passwords, so they are kept out of logs instead (src/logger.ts).
 */
const HTTP_URL_SETTINGS = [
  { name: 'ORDERS_WEBHOOK_URL', httpsInProduction: true },
  { name: 'STRIPE_API_BASE', httpsInProduction: false },
  { name: 'PUBLIC_URL', httpsInProduction: false },
  { name: 'STOREFRONT_URL', httpsInProduction: false },
] as const;

/** 127.0.0.0/8, ::1 and localhost: plain http there never leaves the machine. */
function isLoopback(url: URL): boolean {
  // URL has already normalised the host: `127.1` and `0x7f.0.0.1` read as 127.0.0.1, IPv6 is bracketed.
  const host = url.hostname.toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** What is wrong with one URL setting; the messages never repeat the value, which may hold a secret. */
function urlSettingProblems(name: string, raw: string, httpsRequired: boolean): string[] {
  if (!URL.canParse(raw)) return [`${name} must be a URL`];
  const url = new URL(raw);
  const problems: string[] = [];
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    problems.push(`${name} must be an http: or https: URL`);
  if (url.username || url.password) problems.push(`${name} must not carry a username or password`);
  if (httpsRequired && url.protocol === 'http:' && !isLoopback(url))
    problems.push(`${name} must use https: in production (plain http: only to a loopback host)`);
  return problems;
}

/** Checked on the raw environment, so these are reported along with any other schema problem. */
function urlProblems(env: NodeJS.ProcessEnv): string[] {
  const production = env.NODE_ENV?.trim() === 'production';
  return HTTP_URL_SETTINGS.flatMap(({ name, httpsInProduction }) => {
    const raw = env[name]?.trim();
    return raw ? urlSettingProblems(name, raw, production && httpsInProduction) : [];
  });
}

/** The fraud guards' modes and thresholds (FRAUD_…), with their problems reported beside every other. */
function fraudSettings(env: NodeJS.ProcessEnv): { fraud: FraudConfig | null; fraudProblems: string[] } {
  try {
    return { fraud: loadFraudConfig(env), fraudProblems: [] };
  } catch (err) {
    if (err instanceof FraudConfigError) return { fraud: null, fraudProblems: err.problems };
    throw err;
  }
}

/** Reads the environment once. Throws ConfigError naming every problem at once, never one at a time. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  const { fraud, fraudProblems } = fraudSettings(env);
  const found = [
    ...(parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`)),
    ...urlProblems(env),
    ...fraudProblems,
  ];
  if (!parsed.success || !fraud) throw new ConfigError(found);
  const e = parsed.data;
  const publicUrl = (e.PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/$/, '');
  const webhookSecrets = (e.STRIPE_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const problems = found;
  if (e.NODE_ENV === 'production') {
    if (!e.DATABASE_URL)
      problems.push('DATABASE_URL is required in production (PGlite is for one machine only)');
    if (!e.STRIPE_SECRET_KEY)
      problems.push('STRIPE_SECRET_KEY is required in production (the emulator is refused)');
    if (webhookSecrets.length === 0) problems.push('STRIPE_WEBHOOK_SECRET is required in production');
    if (!e.REFERRAL_IP_SALT)
      problems.push('REFERRAL_IP_SALT is required in production (the secret that IPs are hashed with)');
    if (e.STRIPE_API_BASE)
      problems.push('STRIPE_API_BASE must be unset in production (it points the SDK at an emulator)');
  }
  // Notifications are only ever sent signed, in every environment: a secret generated on the spot would be
  // one the Orders service cannot know.
  const { ORDERS_WEBHOOK_URL: ordersUrl, ORDERS_WEBHOOK_SECRET: ordersSecret } = e;
  if (ordersUrl && !ordersSecret) {
    problems.push('ORDERS_WEBHOOK_SECRET is required when ORDERS_WEBHOOK_URL is set');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    publicUrl,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    rateLimits: Object.freeze({
      perKey: e.RATE_LIMIT_PER_KEY,
      perAddress: e.RATE_LIMIT_PER_ADDRESS,
      webhook: e.RATE_LIMIT_WEBHOOK,
      windowMs: 60_000,
    }),
    stripeSecretKey: e.STRIPE_SECRET_KEY,
    stripeApiBase: e.STRIPE_API_BASE,
    stripeEmulatorPort: e.STRIPE_EMULATOR_PORT,
    webhookSecrets: Object.freeze(webhookSecrets),
    webhookToleranceSeconds: e.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
    ordersWebhook:
      ordersUrl && ordersSecret ? Object.freeze({ url: ordersUrl, secret: ordersSecret }) : undefined,
    commissionHoldDays: e.COMMISSION_HOLD_DAYS,
    referralIpSalt: e.REFERRAL_IP_SALT,
    storefrontUrl: e.STOREFRONT_URL ?? `${publicUrl}/`,
    fraud,
    logLevel: e.LOG_LEVEL,
    embeddedEmulator: !e.STRIPE_SECRET_KEY && !e.STRIPE_API_BASE,
  });
}
