import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import underPressure from '@fastify/under-pressure';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Logger } from 'pino';
import type { Infra } from './compose.js';
import { createModules, type Modules } from './modules.js';
import { AppError, isDatabaseUnavailable, validationFailed } from './shared/errors.js';
import { newId } from './shared/ids.js';
import { unstorablePaths } from './shared/storable.js';

export type App = Awaited<ReturnType<typeof buildApp>>;

/** Route plugins added by callers (tests add routes that throw; later modules add theirs the same way). */
export type RoutePlugin = (app: FastifyInstance) => Promise<void>;

export interface BuildAppOptions {
  infra: Infra;
  /** Built from `infra` when not given; tests pass their own to reach into modules. */
  modules?: Modules;
  logger: Logger | false;
  extraRoutes?: RoutePlugin[];
}

const API_BODY_LIMIT = 256 * 1024;

/**
 * Every string the API accepts must be storable: PostgreSQL refuses NUL (and, in jsonb, unpaired surrogates),
 * which would otherwise surface as a 500 half-way through a request. Checked before each route's own schema, so
 * nothing runs and nothing is stored.
 */
async function refuseUnstorableStrings(req: FastifyRequest): Promise<void> {
  const fields = Object.fromEntries(
    [
      ...unstorablePaths(req.body, 'body'),
      ...unstorablePaths(req.query, 'querystring'),
      ...unstorablePaths(req.params, 'params'),
    ].map((path) => [path, 'must not contain NUL (\\u0000) or unpaired UTF-16 surrogates']),
  );
  if (Object.keys(fields).length > 0)
    throw validationFailed('the request holds a string that cannot be stored', fields);
}

/**
 * A request refused before its body was read (401, a bad signature header, 413, 429) leaves the rest of the
 * body on the wire. Answered with `Connection: close`, the socket goes after the answer instead of reading and
 * discarding what is left, which may be a megabyte sent by someone who was never going to be served.
 */
async function closeUnreadRequests(req: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (!req.raw.complete && reply.statusCode >= 400) reply.header('connection', 'close');
}

/** Request ids: the caller's `X-Request-Id` when it looks like one, so a trace crosses services; else our own. */
const REQUEST_ID = /^[A-Za-z0-9_.:-]{8,128}$/;

export async function buildApp({
  infra,
  modules = createModules(infra),
  logger,
  extraRoutes = [],
}: BuildAppOptions) {
  const app = Fastify({
    ...(logger ? { loggerInstance: logger as FastifyBaseLogger } : { logger: false }),
    requestIdHeader: 'x-request-id',
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : newId('req');
    },
    // The largest valid request (a session of 100 line items with long names and URLs) is about 120 KiB; the
    // webhook route takes its own 1 MiB.
    bodyLimit: API_BODY_LIMIT,
    trustProxy: false,
    // Errors Fastify raises before routing (a malformed URL, a bad header) leave in our shape too.
    frameworkErrors: (err, _req, reply: FastifyReply) => {
      reply.code(400).send(errorBody('validation_failed', err.message, { fields: { url: err.message } }));
    },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.addHook('preValidation', refuseUnstorableStrings);
  app.addHook('onSend', closeUnreadRequests);
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(errorBody('not_found', `no route ${req.method} ${req.url.split('?')[0]}`));
  });

  await app.register(helmet, {
    // The API docs page loads its own scripts and styles from /docs/static.
    contentSecurityPolicy: { directives: { 'script-src': ["'self'"], 'img-src': ["'self'", 'data:'] } },
  });
  // Load shedding only in front of PostgreSQL. PGlite runs its queries on this same event loop, so there the
  // delay measures our own database work, and shedding would refuse the very requests that would finish it.
  if (infra.db.kind === 'postgres') {
    await app.register(underPressure, {
      // Past a second of event-loop delay answers would time out anyway; shedding keeps the process alive.
      maxEventLoopDelay: 1000,
      retryAfter: 5,
      pressureHandler: (_req, reply, type, value) => {
        reply
          .code(503)
          .header('retry-after', '5')
          .send(errorBody('service_unavailable', `overloaded (${type} ${value ?? ''})`.trim()));
      },
    });
  }
  await app.register(swagger, {
    openapi: {
      info: { title: 'payments-service', version: '0.1.0' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  // Every module's hooks reach the whole app and come before any route: Idempotency-Key handling, for one, is
  // added to each POST route as it is registered.
  for (const m of modules.list) if (m.plugin) await m.plugin(app);
  for (const m of modules.list) if (m.routes) await app.register(m.routes);
  for (const routes of extraRoutes) await app.register(routes);
  return app;
}

export const errorBody = (code: string, message: string, details?: Record<string, unknown>) => ({
  error: { code, message, ...(details ? { details } : {}) },
});

/**
 * The one error handler: every failure leaves in the CONTRACT §3 shape. Unknown errors are logged with
 * their stack and answer 500 `internal_error` with nothing from inside.
 */
function errorHandler(err: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  if (err instanceof AppError) {
    if (err.retryable && err.status === 503) reply.header('retry-after', '5');
    if (err.status >= 500) req.log.warn({ err }, err.message);
    return reply.code(err.status).send(errorBody(err.code, err.message, err.details));
  }
  if (hasZodFastifySchemaValidationErrors(err)) {
    const fields: Record<string, string> = {};
    for (const v of err.validation) {
      const where = v.instancePath.replace(/^\//, '').replaceAll('/', '.');
      const key = [err.validationContext, where].filter(Boolean).join('.');
      fields[key || String(err.validationContext ?? 'body')] = v.message ?? 'invalid';
    }
    return reply.code(400).send(errorBody('validation_failed', 'the request is invalid', { fields }));
  }
  if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(413).send(errorBody('payload_too_large', 'the body is larger than this route accepts'));
  }
  if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return reply.code(415).send(errorBody('unsupported_media_type', 'send application/json'));
  }
  if (err.statusCode === 400 && err.code?.startsWith('FST_ERR_CTP')) {
    return reply
      .code(400)
      .send(errorBody('validation_failed', 'the body is not valid JSON', { fields: { body: err.message } }));
  }
  if (isDatabaseUnavailable(err)) {
    req.log.error({ err }, 'database unavailable');
    reply.header('retry-after', '5');
    return reply.code(503).send(errorBody('service_unavailable', 'the database is unavailable; retry later'));
  }
  req.log.error({ err }, 'unhandled error');
  return reply.code(500).send(errorBody('internal_error', 'internal error'));
}
