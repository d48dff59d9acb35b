import { z } from 'zod';

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
  STRIPE_SECRET_KEY: optionalText.refine((v) => v === undefined || /^(sk|rk)_(test|live)_/.test(v), {
    message: 'must start with sk_test_, sk_live_, rk_test_ or rk_live_',
  }),
  STRIPE_API_BASE: optionalText.refine((v) => v === undefined || URL.canParse(v), {
    message: 'must be a URL',
  }),
  STRIPE_EMULATOR_PORT: port.default(12111),
  STRIPE_WEBHOOK_SECRET: optionalText,
  // Stripe's own libraries default to 300 s; 0 would accept a captured request forever, so it is refused.
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: z.coerce.number().int().positive().default(300),
  ORDERS_WEBHOOK_URL: optionalText.refine((v) => v === undefined || URL.canParse(v), {
    message: 'must be a URL',
  }),
  ORDERS_WEBHOOK_SECRET: optionalText.refine((v) => v === undefined || v.startsWith('whsec_'), {
    message: 'must be a whsec_ secret',
  }),
  COMMISSION_HOLD_DAYS: z.coerce.number().int().min(0).max(365).default(30),
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
  stripeSecretKey: string | undefined;
  stripeApiBase: string | undefined;
  stripeEmulatorPort: number;
  /** Every accepted signing secret; more than one while a secret is being rotated. */
  webhookSecrets: readonly string[];
  webhookToleranceSeconds: number;
  /** The Orders service's endpoint and the `whsec_` secret to sign with; unset, no notification is sent. */
  ordersWebhook: Readonly<{ url: string; secret: string }> | undefined;
  commissionHoldDays: number;
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

/** Reads the environment once. Throws ConfigError naming every problem at once, never one at a time. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`));
  }
  const e = parsed.data;
  const webhookSecrets = (e.STRIPE_WEBHOOK_SECRET ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const problems: string[] = [];
  if (e.NODE_ENV === 'production') {
    if (!e.DATABASE_URL)
      problems.push('DATABASE_URL is required in production (PGlite is for one machine only)');
    if (!e.STRIPE_SECRET_KEY)
      problems.push('STRIPE_SECRET_KEY is required in production (the emulator is refused)');
    if (webhookSecrets.length === 0) problems.push('STRIPE_WEBHOOK_SECRET is required in production');
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
    publicUrl: (e.PUBLIC_URL ?? `http://127.0.0.1:${e.PORT}`).replace(/\/$/, ''),
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    redisUrl: e.REDIS_URL,
    stripeSecretKey: e.STRIPE_SECRET_KEY,
    stripeApiBase: e.STRIPE_API_BASE,
    stripeEmulatorPort: e.STRIPE_EMULATOR_PORT,
    webhookSecrets: Object.freeze(webhookSecrets),
    webhookToleranceSeconds: e.STRIPE_WEBHOOK_TOLERANCE_SECONDS,
    ordersWebhook:
      ordersUrl && ordersSecret ? Object.freeze({ url: ordersUrl, secret: ordersSecret }) : undefined,
    commissionHoldDays: e.COMMISSION_HOLD_DAYS,
    logLevel: e.LOG_LEVEL,
    embeddedEmulator: !e.STRIPE_SECRET_KEY && !e.STRIPE_API_BASE,
  });
}
