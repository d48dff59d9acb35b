import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';
import { createLogger, defaultDestination } from './logger.js';

/** A line as pino wrote it; only the fields these tests read. */
interface Line {
  msg?: string;
  url?: string;
  config: Record<string, unknown>;
  req: { headers: Record<string, string> };
  err: { type: string; message: string; stack: string; code?: string; input?: string };
}

/** A logger writing into an array: what it writes is the feature under test, so the lines are read back. */
function capture() {
  const lines: string[] = [];
  const log = createLogger('info', { write: (line: string) => lines.push(line) });
  return { log, lines, last: () => JSON.parse(lines.at(-1)!) as Line };
}

const DB_PASSWORD = 'db-pa55word';
const REDIS_PASSWORD = 'redis-pa55word';
const STRIPE_KEY = 'sk_live_51abcdefghijklmnop';
const WEBHOOK_SECRET = 'whsec_stripeSideSecret';
const ORDERS_SECRET = 'whsec_ordersSideSecret';
const ORDERS_URL = 'https://orders.example/hooks/k3y?token=s3cret-token';
const IP_SALT = 'the-salt-ips-are-hashed-with';

describe('createLogger', () => {
  it('censors every secret of the configuration when the configuration is logged', () => {
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: `postgres://payments:${DB_PASSWORD}@db.internal:5432/payments`,
      REDIS_URL: `redis://:${REDIS_PASSWORD}@cache.internal:6379`,
      STRIPE_SECRET_KEY: STRIPE_KEY,
      STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      ORDERS_WEBHOOK_URL: ORDERS_URL,
      ORDERS_WEBHOOK_SECRET: ORDERS_SECRET,
      REFERRAL_IP_SALT: IP_SALT,
    });
    const { log, lines, last } = capture();
    log.info({ config }, 'configuration');
    for (const secret of [
      IP_SALT,
      DB_PASSWORD,
      REDIS_PASSWORD,
      STRIPE_KEY,
      WEBHOOK_SECRET,
      ORDERS_SECRET,
      's3cret-token',
    ])
      expect(lines[0]).not.toContain(secret);
    expect(last().config).toMatchObject({
      databaseUrl: '[redacted]',
      redisUrl: '[redacted]',
      stripeSecretKey: '[redacted]',
      webhookSecrets: '[redacted]',
      ordersWebhook: '[redacted]',
      // What is no secret stays readable.
      nodeEnv: 'production',
      port: 3000,
    });
  });

  it('censors secrets logged at the top level and one level down', () => {
    const { log, last } = capture();
    log.info({ secret: 'top', password: 'pw1', redis: { password: 'pw2' }, pg: { connectionString: 'x' } });
    expect(last()).toMatchObject({
      secret: '[redacted]',
      password: '[redacted]',
      redis: { password: '[redacted]' },
      pg: { connectionString: '[redacted]' },
    });
  });

  it('censors request credentials', () => {
    const { log, last } = capture();
    const headers = {
      authorization: 'Bearer psk_live_key',
      cookie: 'session=abc',
      'stripe-signature': 't=1,v1=abc',
      'webhook-signature': 'v1,abc',
      'user-agent': 'curl/8',
    };
    log.info({ req: { method: 'POST', url: '/v1/orders', headers } });
    expect(last().req.headers).toEqual({
      authorization: '[redacted]',
      cookie: '[redacted]',
      'stripe-signature': '[redacted]',
      'webhook-signature': '[redacted]',
      'user-agent': 'curl/8',
    });
  });

  it("hides the password of a URL quoted by an error, its cause, or the line's message", () => {
    const { log, lines, last } = capture();
    const url = `postgres://payments:${DB_PASSWORD}@db.internal:5432/payments`;
    const hidden = 'postgres://[redacted]@db.internal:5432/payments';
    const err = new Error(`could not connect to ${url}`, { cause: new Error(`refused: ${url}`) });
    log.warn({ err }, `database unavailable at ${url}`);
    expect(lines[0]).not.toContain(DB_PASSWORD);
    const line = last();
    expect(line.msg).toBe(`database unavailable at ${hidden}`);
    // pino folds the cause into the message and the stack.
    expect(line.err.message).toBe(`could not connect to ${hidden}: refused: ${hidden}`);
    expect(line.err.stack).toContain(`caused by: Error: refused: ${hidden}`);
    expect(line.err.type).toBe('Error');
  });

  it('hides the password of a URL in any field', () => {
    const { log, last } = capture();
    log.info({ url: `redis://:${REDIS_PASSWORD}@cache:6379`, nested: { urls: [`amqp://u:p4ss@mq`] } });
    expect(last()).toMatchObject({
      url: 'redis://[redacted]@cache:6379',
      nested: { urls: ['amqp://[redacted]@mq'] },
    });
  });

  it('hides the password in the input that a URL parse error keeps', () => {
    const { log, lines, last } = capture();
    let parseError: unknown;
    try {
      new URL(`redis://:${REDIS_PASSWORD}@[not-a-host`);
    } catch (e) {
      parseError = e;
    }
    log.error({ err: parseError }, 'REDIS_URL could not be read');
    expect(lines[0]).not.toContain(REDIS_PASSWORD);
    expect(last().err).toMatchObject({ code: 'ERR_INVALID_URL', input: 'redis://[redacted]@[not-a-host' });
  });
});

describe('defaultDestination', () => {
  it('writes JSON to a pipe and readable lines to a terminal', () => {
    const pipe = { isTTY: false } as NodeJS.WriteStream;
    expect(defaultDestination(pipe)).toBe(pipe);
    const terminal = { isTTY: true } as NodeJS.WriteStream;
    const pretty = defaultDestination(terminal);
    expect(pretty).not.toBe(terminal);
    expect(typeof pretty.write).toBe('function');
  });
});
