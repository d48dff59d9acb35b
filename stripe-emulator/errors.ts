/** Stripe's error `type`s that the emulator can answer with. */
export type StripeErrorType = 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  doc_url?: string;
}

/**
 * An error answered in Stripe's `{"error": {...}}` shape. `replayable` is false for requests refused
 * before any work started (bad parameters, unknown objects): Stripe keeps no idempotent result for those,
 * so the caller may fix the request and retry with the same key.
 */
export class StripeApiError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  readonly replayable: boolean;

  constructor(status: number, body: StripeErrorBody, replayable = true) {
    super(body.message);
    this.status = status;
    this.body = body;
    this.replayable = replayable;
  }
}

export function invalidParam(message: string, param: string, code?: string): StripeApiError {
  return new StripeApiError(
    400,
    { type: 'invalid_request_error', message, param, ...(code ? { code } : {}) },
    false,
  );
}

export function missingParam(param: string): StripeApiError {
  return invalidParam(`Missing required param: ${param}.`, param, 'parameter_missing');
}

/** `what` is Stripe's object name as it appears in the message: `charge`, `checkout.session`, … */
export function noSuch(what: string, id: string, param = 'id'): StripeApiError {
  return new StripeApiError(
    404,
    { type: 'invalid_request_error', code: 'resource_missing', message: `No such ${what}: '${id}'`, param },
    false,
  );
}

/** A request that reached an object in a state that forbids it; Stripe keeps these for replay. */
export function invalidState(message: string, code?: string, param?: string): StripeApiError {
  return new StripeApiError(400, {
    type: 'invalid_request_error',
    message,
    ...(code ? { code } : {}),
    ...(param ? { param } : {}),
  });
}
