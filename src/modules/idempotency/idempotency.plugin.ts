import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import type { Queryable } from '../../ports/db.js';
import { AppError, validationFailed } from '../../shared/errors.js';
import {
  claimKey,
  completeKey,
  forgetKey,
  type HeldKey,
  parseIdempotencyKey,
  releaseKey,
  requestFingerprint,
} from './idempotency.keys.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `'required'`: the route moves money or reaches Stripe, so a request without `Idempotency-Key` is refused. */
    idempotency?: 'required';
  }
  interface FastifyRequest {
    /** The `Idempotency-Key` this request holds, if it sent one: pass `.id` to services that call Stripe. */
    idempotency: HeldKey | null;
    /** A JSON body's bytes as sent: what a key's fingerprint is taken over. */
    rawBody: Buffer | null;
  }
}

/** What the hooks share for the app's lifetime. */
interface KeyHooks {
  db: Queryable;
  /** Requests that failed in a way a retry may fix (AppError.retryable). */
  retryable: WeakSet<FastifyRequest>;
}

/**
 * The header, or null when there is none; refuses a route that requires one. Checked before anything else,
 * for callers without a key too: the route says so whoever asks.
 */
function headerOf(req: FastifyRequest): string | null {
  const header = req.headers['idempotency-key'];
  if (header !== undefined && header !== '') return Array.isArray(header) ? (header[0] ?? '') : header;
  if (req.routeOptions.config.idempotency === 'required') {
    throw new AppError(
      400,
      'idempotency_key_missing',
      'this request moves money or reaches Stripe: send an Idempotency-Key header',
    );
  }
  return null;
}

async function claimForRequest(h: KeyHooks, req: FastifyRequest, reply: FastifyReply) {
  const header = headerOf(req);
  // Keys are scoped to the API key that sent them. A request without one (a public route: the webhook, the
  // pages) has no scope to keep a key in, and nothing of it is fingerprinted or stored.
  if (header === null || !req.principal) return;
  const key = parseIdempotencyKey(header);
  if (!key) {
    throw validationFailed('the Idempotency-Key header is invalid', {
      'headers.idempotency-key': 'must be 1-255 printable ASCII characters',
    });
  }
  const fingerprint = requestFingerprint(req.method, req.url, req.rawBody);
  const result = await claimKey(h.db, req.principal.keyId, key, fingerprint);
  switch (result.kind) {
    case 'held':
      req.idempotency = result.key;
      return;
    case 'replay':
      reply.code(result.status).header('idempotent-replayed', 'true').type(result.type).send(result.body);
      return reply;
    case 'reused':
      throw new AppError(
        422,
        'idempotency_key_reused',
        'this Idempotency-Key was used for a different request',
        {
          details: { idempotency_key: key },
        },
      );
    case 'in_use':
      throw new AppError(
        409,
        'idempotency_key_in_use',
        'a request with this Idempotency-Key is still in progress',
        {
          details: { idempotency_key: key },
          retryable: true,
        },
      );
  }
}

async function storeResponse(h: KeyHooks, req: FastifyRequest, reply: FastifyReply, payload: unknown) {
  const held = req.idempotency;
  if (!held) return payload;
  req.idempotency = null;
  const status = reply.statusCode;
  try {
    if (status === 400) await forgetKey(h.db, held);
    else if (status >= 500 || status === 429 || h.retryable.has(req) || typeof payload !== 'string') {
      await releaseKey(h.db, held);
    } else {
      const type = String(reply.getHeader('content-type') ?? 'application/json; charset=utf-8');
      await completeKey(h.db, held, { status, type, body: payload });
    }
  } catch (err) {
    // The response still goes out; the key stays in flight until its lease ends, then a retry takes it over.
    req.log.warn({ err }, 'could not store the idempotent response');
  }
  return payload;
}

/**
 * `Idempotency-Key` on our API (IETF draft, CONTRACT §3), added to every `POST` route as it is registered:
 * honoured where an authenticated caller sends it, required where the route says
 * `config: { idempotency: 'required' }`.
 *
 * Hooks, in Fastify's order: the JSON parser keeps the body's bytes; preHandler (after the route's role check,
 * so 401/403 come first and an unauthenticated request costs nothing here) fingerprints those bytes, claims the
 * key, replays a stored response or refuses; onSend stores the final response. What is stored: everything a
 * retry would get again. Not stored: 400 (the request was refused before doing anything, so a corrected one
 * may use the key), 429, 5xx and retryable errors (a retry may succeed: the key keeps its fingerprint and is
 * free at once).
 */
export const idempotencyPlugin = fp(async (app: FastifyInstance, opts: { db: Queryable }) => {
  const h: KeyHooks = { db: opts.db, retryable: new WeakSet() };
  const claim = (req: FastifyRequest, reply: FastifyReply) => claimForRequest(h, req, reply);
  const noteRetryable = async (req: FastifyRequest, _reply: FastifyReply, err: unknown) => {
    if (err instanceof AppError && err.retryable) h.retryable.add(req);
  };
  const store = (req: FastifyRequest, reply: FastifyReply, payload: unknown) =>
    storeResponse(h, req, reply, payload);

  app.decorateRequest('idempotency', null);
  app.decorateRequest('rawBody', null);
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    req.rawBody = body as Buffer;
    parseJson(req, req.rawBody.toString('utf8'), done);
  });
  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    if (!methods.includes('POST')) return;
    route.preHandler = [...hooks(route.preHandler), claim];
    route.onError = [...hooks(route.onError), noteRetryable];
    route.onSend = [...hooks(route.onSend), store];
  });
});

// biome-ignore lint/suspicious/noExplicitAny: route hooks come in several Fastify hook types.
const hooks = (h: any): any[] => (h === undefined ? [] : Array.isArray(h) ? h : [h]);
