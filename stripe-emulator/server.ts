import http from 'node:http';
import qs from 'qs';
import { StripeApiError } from './errors.js';
import { type IdempotencyStore, requestFingerprint } from './idempotency.js';
import { randomToken } from './ids.js';
import { applyExpand, type FieldExpander } from './lists.js';
import { API_VERSION } from './objects.js';
import type { Params } from './params.js';
import type { RequestContext } from './state.js';

export type HttpMethod = 'GET' | 'POST' | 'DELETE';

export interface ApiCall {
  params: Params;
  /** The path's `:name` segments, in order. */
  args: string[];
  ctx: RequestContext;
}

export interface ApiRoute {
  method: HttpMethod;
  pattern: RegExp;
  handle: (call: ApiCall) => unknown;
}

export interface PageRequest {
  args: string[];
  form: Params;
}

/** What a hosted-page route answers: HTML, or a redirect (303, as after a form post). */
export type PageResponse = { status: number; html: string } | { redirect: string };

export interface PageRoute {
  method: HttpMethod;
  pattern: RegExp;
  handle: (req: PageRequest) => PageResponse;
}

/** Turns `/v1/charges/:id` into a pattern whose groups are the `:name` segments. */
export function pathPattern(path: string): RegExp {
  const source = path
    .split('/')
    .map((part) => (part.startsWith(':') ? '([^/]+)' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

// Stripe refuses request bodies above a few megabytes; the emulator's largest real body is a few KB.
const MAX_BODY_BYTES = 1024 * 1024;
// Stripe's limit on the length of an Idempotency-Key.
const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
// Parsing limits for `qs`: Stripe accepts up to 100 line items, and nests parameters a few levels deep.
const QS_OPTIONS = { depth: 8, arrayLimit: 100, parameterLimit: 2000 } as const;

const NO_API_KEY =
  "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.";

export interface ServerDeps {
  api: ApiRoute[];
  pages: PageRoute[];
  idempotency: IdempotencyStore;
  expandField: FieldExpander;
  log: (msg: string, data?: object) => void;
}

export function createHttpServer(deps: ServerDeps): http.Server {
  return http.createServer((req, res) => {
    handle(deps, req, res).catch((err: unknown) => {
      deps.log('request failed', { err: String(err) });
      if (!res.headersSent) sendRaw(res, 500, errorBody(internalError()), {});
      else res.destroy();
    });
  });
}

async function handle(deps: ServerDeps, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://emulator');
  const method = (req.method ?? 'GET').toUpperCase();
  const rawBody = await readBody(req);
  if (rawBody === undefined) {
    sendRaw(
      res,
      413,
      errorBody(new StripeApiError(413, { type: 'invalid_request_error', message: 'Request too large.' })),
      {},
    );
    return;
  }
  if (url.pathname.startsWith('/v1/')) await handleApi(deps, req, res, url, method, rawBody);
  else handlePage(deps, res, url, method, rawBody);
}

async function handleApi(
  deps: ServerDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
  method: string,
  rawBody: string,
): Promise<void> {
  const requestId = `req_${randomToken(14)}`;
  const idempotencyKey = header(req, 'idempotency-key');
  const headers: Record<string, string> = {
    'Request-Id': requestId,
    'Stripe-Version': header(req, 'stripe-version') ?? API_VERSION,
    ...(idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {}),
  };
  const reply = (status: number, body: string) => {
    sendRaw(res, status, body, headers);
    deps.log('api request', { method, path: url.pathname, status, request_id: requestId });
  };

  const apiKey = apiKeyOf(header(req, 'authorization'));
  if (!apiKey) {
    reply(401, errorBody(new StripeApiError(401, { type: 'invalid_request_error', message: NO_API_KEY })));
    return;
  }
  const found = matchRoute(deps.api, method, url.pathname);
  if (!found) {
    const message = `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`;
    reply(404, errorBody(new StripeApiError(404, { type: 'invalid_request_error', message })));
    return;
  }
  const params: Params = {
    ...qs.parse(url.search.slice(1), QS_OPTIONS),
    ...(method === 'POST' ? qs.parse(rawBody, QS_OPTIONS) : {}),
  };

  // Stripe honours Idempotency-Key on POST only; on GET and DELETE it has no effect. Handlers are
  // synchronous, so nothing runs between the lookup below and the save after the handler: a concurrent
  // request with the same key always finds the first one's stored response, never a request in flight.
  const keyed = method === 'POST' && idempotencyKey !== undefined;
  const fingerprint = keyed ? requestFingerprint(method, url.pathname, params) : '';
  if (keyed) {
    if (idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      const message = `Invalid idempotency key: must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters.`;
      reply(400, errorBody(new StripeApiError(400, { type: 'invalid_request_error', message })));
      return;
    }
    const seen = deps.idempotency.lookup(apiKey, idempotencyKey, fingerprint);
    if (seen.kind === 'replay') {
      headers['Request-Id'] = seen.response.requestId;
      headers['Idempotent-Replayed'] = 'true';
      reply(seen.response.status, seen.response.body);
      return;
    }
    if (seen.kind === 'mismatch') {
      const message = `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`;
      reply(400, errorBody(new StripeApiError(400, { type: 'idempotency_error', message })));
      return;
    }
  }

  let status = 200;
  let body: string;
  let replayable = true;
  try {
    const result = found.route.handle({
      params,
      args: found.args,
      ctx: { requestId, idempotencyKey: idempotencyKey ?? null },
    });
    body = JSON.stringify(applyExpand(JSON.parse(JSON.stringify(result)), params, deps.expandField), null, 2);
  } catch (err) {
    const apiError = err instanceof StripeApiError ? err : internalError();
    if (!(err instanceof StripeApiError))
      deps.log('handler crashed', { err: String(err), stack: (err as Error)?.stack });
    status = apiError.status;
    body = errorBody(apiError);
    replayable = apiError.replayable && status < 500;
  }
  if (keyed && replayable)
    deps.idempotency.save(apiKey, idempotencyKey, fingerprint, { status, body, requestId });
  reply(status, body);
}

function handlePage(
  deps: ServerDeps,
  res: http.ServerResponse,
  url: URL,
  method: string,
  rawBody: string,
): void {
  const found = matchRoute(deps.pages, method, url.pathname);
  if (!found) {
    sendRaw(res, 404, 'Not found', { 'Content-Type': 'text/plain; charset=utf-8' });
    return;
  }
  const answer = found.route.handle({
    args: found.args,
    form: method === 'POST' ? qs.parse(rawBody, QS_OPTIONS) : {},
  });
  if ('redirect' in answer) {
    res.writeHead(303, { Location: answer.redirect, 'Cache-Control': 'no-store' });
    res.end();
    return;
  }
  sendRaw(res, answer.status, answer.html, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
  });
}

function matchRoute<R extends { method: HttpMethod; pattern: RegExp }>(
  routes: R[],
  method: string,
  path: string,
): { route: R; args: string[] } | undefined {
  for (const route of routes) {
    if (route.method !== method) continue;
    const m = route.pattern.exec(path);
    if (m) return { route, args: m.slice(1).map((s) => decodeURIComponent(s)) };
  }
  return undefined;
}

/** Bearer auth as the SDK sends it, or Basic with the key as user name as curl users send it. */
function apiKeyOf(authorization: string | undefined): string | undefined {
  if (!authorization) return undefined;
  const [scheme, value] = authorization.trim().split(/\s+/, 2);
  if (!value) return undefined;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic') {
    const user = Buffer.from(value, 'base64').toString('utf8').split(':')[0];
    return user || undefined;
  }
  return undefined;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const text = Array.isArray(value) ? value[0] : value;
  return text === undefined || text === '' ? undefined : text;
}

/** The whole body as text, or undefined when it is over the limit. */
async function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buf);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function internalError(): StripeApiError {
  return new StripeApiError(500, {
    type: 'api_error',
    message: 'An unknown error occurred in the Stripe emulator.',
  });
}

function errorBody(err: StripeApiError): string {
  return JSON.stringify({ error: err.body }, null, 2);
}

function sendRaw(
  res: http.ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string>,
): void {
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Cache-Control': 'no-cache, no-store',
    ...headers,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}
