import { type DestinationStream, type LogFn, type Logger, pino } from 'pino';
import pretty from 'pino-pretty';
import { redactUrlCredentials } from './shared/redact.js';

/**
 * The configuration's secrets by their names in `Config` (and in the options of the clients built from it),
 * and the usual names of credentials. Each is censored at the top of a log object and one level down, which
 * is how such values travel: `log.info({ config })`, `{ redis: { password } }`, `{ ordersWebhook }`.
 * DATABASE_URL and REDIS_URL are here whole, host included: they legitimately carry passwords, and a log line
 * that needs the host can name it on its own.
 */
const SECRET_FIELDS = [
  'secret',
  'key',
  'password',
  'token',
  'connectionString',
  'databaseUrl',
  'redisUrl',
  'stripeSecretKey',
  'webhookSecret',
  'webhookSecrets',
  'ordersWebhook',
  'referralIpSalt',
];

const REDACT_PATHS = [
  // Request credentials, should a serializer ever log headers (Fastify's default one does not).
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["stripe-signature"]',
  'req.headers["webhook-signature"]',
  'res.headers["set-cookie"]',
  ...SECRET_FIELDS.flatMap((field) => [field, `*.${field}`]),
];

/**
 * Errors are logged by what they say, and what they say may quote a URL they were given, credentials
 * included (the `pg` and `ioredis` drivers, fetch, `new URL`, whose error keeps the input as `input`). Every
 * string of the serialized error, its causes included, has those credentials replaced.
 */
function scrubbedError(err: Error): unknown {
  // The serializer's output (and each of an AggregateError's errors in it) is an object of its own class,
  // made to be written out as it is: all of it is walked.
  return scrubStrings(pino.stdSerializers.err(err), 0, () => true);
}

// Log objects and serialized errors nest a few levels (a config inside an object, an AggregateError's
// errors); this depth stops a cyclic or very deep object from making a log call expensive.
const MAX_SCRUB_DEPTH = 5;

/** Plain objects: what a log call's own fields are made of. */
const isPlain = (value: object) => [Object.prototype, null].includes(Object.getPrototypeOf(value));

/**
 * Replaces URL credentials in every string of `value`, descending into arrays and the objects `descend`
 * accepts. For a log call's fields that is plain objects only: an Error or a request is left whole for its
 * serializer, which runs after this and would find only a copy of its enumerable fields otherwise.
 */
function scrubStrings(value: unknown, depth: number, descend: (o: object) => boolean): unknown {
  if (typeof value === 'string') return redactUrlCredentials(value);
  if (depth >= MAX_SCRUB_DEPTH || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => scrubStrings(v, depth + 1, descend));
  if (!descend(value)) return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, scrubStrings(v, depth + 1, descend)]));
}

/**
 * Where logs go by default: readable lines for a person at a terminal, JSON lines for anything that collects
 * them (a pipe, a file, a log shipper). The prettifier runs in this thread, after redaction, so what a person
 * sees is what JSON would have carried.
 */
export function defaultDestination(stream: NodeJS.WriteStream = process.stdout): DestinationStream {
  return stream.isTTY ? pretty({ colorize: true, destination: 1, sync: true }) : stream;
}

/**
 * JSON logs with the configuration's secrets, request credentials and the passwords of URLs censored.
 * `destination` defaults to stdout (pretty-printed when it is a terminal); tests pass a stream of their own.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    serializers: { err: scrubbedError },
    // Whatever field a URL with a password travels in (`{ url }`, `{ target: { href } }`), not only the
    // named ones above.
    formatters: {
      log: (object: Record<string, unknown>) => scrubStrings(object, 0, isPlain) as Record<string, unknown>,
    },
    hooks: {
      // The message text, too: `log.warn({ err }, err.message)` repeats an error's words outside `err`.
      logMethod(this: Logger, args: Parameters<LogFn>, method: LogFn) {
        const scrubbed = args.map((a) => (typeof a === 'string' ? redactUrlCredentials(a) : a));
        method.apply(this, scrubbed as Parameters<LogFn>);
      },
    },
  };
  return pino(options, destination ?? defaultDestination());
}
