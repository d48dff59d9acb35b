import { redactUrlCredentials } from './redact.js';
import { storableString } from './storable.js';
/**
 * The one error type the service raises on purpose. `code` is the stable, documented name clients switch on
 * (CONTRACT §3); `message` is for people and may change.
 */
export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: Record<string, unknown> | undefined;
  /** True when the same request may succeed later (dependency down, lock held): 503/409, with Retry-After. */
  readonly retryable: boolean;

  constructor(
    status: number,
    code: string,
    message: string,
    opts: { details?: Record<string, unknown>; retryable?: boolean; cause?: unknown } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = 'AppError';
    this.status = status;
    this.code = code;
    this.details = opts.details;
    this.retryable = opts.retryable ?? false;
  }
}

export const notFound = (what: string) => new AppError(404, 'not_found', `${what} was not found`);
export const forbidden = (why = 'this key may not do that') => new AppError(403, 'forbidden', why);
export const validationFailed = (message: string, fields: Record<string, string>) =>
  new AppError(400, 'validation_failed', message, { details: { fields } });
export const serviceUnavailable = (what: string, cause?: unknown) =>
  new AppError(503, 'service_unavailable', `${what} is unavailable; retry later`, { retryable: true, cause });

/**
 * SQLSTATE classes and codes that mean "the database could not be reached or the connection broke", as
 * opposed to "the query was wrong". Requests that meet them answer 503 so that callers (and Stripe) retry.
 */
const UNAVAILABLE_SQLSTATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code)))
    return true;
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  );
}

/** Two transactions touched the same rows in an order PostgreSQL could not serialise; retrying is safe. */
export const isSerializationFailure = (err: unknown) =>
  err instanceof Error && ['40001', '40P01'].includes(String((err as { code?: unknown }).code));

/** A unique constraint refused a second copy of something: the caller decides whether that means "done". */
export const isUniqueViolation = (err: unknown) =>
  err instanceof Error && (err as { code?: unknown }).code === '23505';

/**
 * What is kept of an error in a row (`last_error`, a dead letter's reason): its message without passwords in
 * URLs, bounded and storable.
 */
export const errorMessage = (err: unknown, max = 500) =>
  storableString(redactUrlCredentials(err instanceof Error ? err.message : String(err)).slice(0, max));
