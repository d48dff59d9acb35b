import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import session from '@fastify/session';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Queryable } from '../../ports/db.js';
import { AppError } from '../../shared/errors.js';
import { sha256Hex } from '../../shared/hash.js';
import type { Principal } from '../auth/index.js';
import * as sql from './dashboard.sql.js';

declare module 'fastify' {
  interface Session {
    /** The API key's principal the session was opened with; re-checked against the key on every request. */
    principal?: Principal;
  }
}

/** A working day: a dashboard left open overnight asks for the key again. */
export const SESSION_MAX_AGE_MS = 8 * 60 * 60_000;
export const SESSION_COOKIE = 'ps_dashboard';
/** Expired sessions removed per sign-in: enough to keep up with sign-ins, never a long delete. */
const SWEEP_BATCH = 50;

/** `dashboard_sessions` as @fastify/session's store: only the id's hash is kept. */
export function sessionStore(db: Queryable) {
  const hash = (sid: string) => sha256Hex(sid);
  return {
    set(sid: string, data: object, done: (err?: unknown) => void) {
      db.query(sql.upsertSession(hash(sid), data, new Date(Date.now() + SESSION_MAX_AGE_MS))).then(
        () => done(),
        done,
      );
    },
    get(sid: string, done: (err: unknown, data?: never) => void) {
      db.query<{ data: never }>(sql.selectSession(hash(sid))).then(
        (r) => done(null, r.rows[0]?.data),
        (err) => done(err),
      );
    },
    destroy(sid: string, done: (err?: unknown) => void) {
      db.query(sql.deleteSession(hash(sid))).then(() => done(), done);
    },
  };
}

export const sweepExpiredSessions = (db: Queryable) => db.query(sql.deleteExpiredSessions(SWEEP_BATCH));

export interface SessionOptions {
  db: Queryable;
  /** Signs the session and CSRF cookies. */
  secret: string;
  /** PUBLIC_URL: its origin is the only one a form may be posted from; https makes the cookies Secure. */
  publicUrl: string;
}

/**
 * Cookies, sessions in `dashboard_sessions`, CSRF secrets in a signed cookie of their own (so the sign-in form
 * is protected before any session exists) and form bodies: registered in the dashboard's own scope, so the
 * JSON API never parses a form nor reads a cookie.
 */
export async function registerSessions(app: FastifyInstance, opts: SessionOptions): Promise<void> {
  const secure = new URL(opts.publicUrl).protocol === 'https:';
  await app.register(formbody, { bodyLimit: 16 * 1024 });
  await app.register(cookie, { secret: opts.secret });
  await app.register(session, {
    secret: opts.secret,
    cookieName: SESSION_COOKIE,
    store: sessionStore(opts.db),
    saveUninitialized: false,
    rolling: false,
    // Secure is added below: the plugin sets no Secure cookie on a request that reached us over plain http,
    // which is every request behind the TLS-terminating proxy an https PUBLIC_URL implies.
    cookie: {
      path: '/dashboard',
      httpOnly: true,
      sameSite: 'strict',
      secure: false,
      maxAge: SESSION_MAX_AGE_MS,
    },
  });
  if (secure) app.addHook('onSend', async (_req, reply) => markSecure(reply));
  await app.register(csrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: 'ps_dashboard_csrf',
    cookieOpts: { path: '/dashboard', httpOnly: true, sameSite: 'strict', secure, signed: true },
    getToken: (req) => (req.body as Record<string, string> | undefined)?._csrf,
  });
}

/** Adds `Secure` to the dashboard's session cookie where it is set. */
function markSecure(reply: FastifyReply): void {
  const set = reply.getHeader('set-cookie');
  if (set === undefined) return;
  const cookies = (Array.isArray(set) ? set : [String(set)]).map((c) =>
    c.startsWith(`${SESSION_COOKIE}=`) && !/;\s*secure/i.test(c) ? `${c}; Secure` : c,
  );
  // Fastify appends to set-cookie; the list replaces what was there.
  reply.removeHeader('set-cookie');
  reply.header('set-cookie', cookies);
}

const csrfRefused = (why: string) =>
  new AppError(403, 'csrf_invalid', `the form was refused: ${why}; reload the page and try again`);

/**
 * Every state-changing form: posted from our own origin (when the browser says where from) with the token the
 * page it came from was given. Anything else is refused with 403 `csrf_invalid` before the action runs.
 */
export function checkForm(publicUrl: string) {
  const ours = new URL(publicUrl).origin;
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const origin = req.headers.origin;
    if (origin !== undefined && origin !== ours) throw csrfRefused('it came from another site');
    // The plugin answers a bad token by sending its own error; here it becomes ours, in our error shape.
    await new Promise<void>((resolve, reject) => {
      const answer = {
        unsignCookie: (value: string) => reply.unsignCookie(value),
        send: () => reject(csrfRefused('its token is missing or wrong')),
      } as unknown as FastifyReply;
      req.server.csrfProtection(req, answer, resolve);
    });
  };
}

/**
 * The signed-in principal, with its key still live; a browser without one is sent to the sign-in page and
 * the route does not run.
 */
export function signedIn(principalOfKey: (keyId: string) => Promise<Principal | null>) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const held = req.session.principal;
    const live = held ? await principalOfKey(held.keyId) : null;
    if (!live) {
      if (held) await req.session.destroy();
      return reply.redirect('/dashboard/sign-in', 302);
    }
    req.principal = live;
  };
}
