import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, forbidden } from '../../shared/errors.js';
import type { Principal, Role } from './auth.keys.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The principal an API key stands for, or null for an unknown or revoked key. */
    authenticateKey(key: string): Promise<Principal | null>;
  }
  interface FastifyRequest {
    /** Set by a route's role check; null on public routes, which never read `Authorization`. */
    principal: Principal | null;
  }
}

const unauthenticated = () =>
  new AppError(401, 'unauthenticated', 'send a valid API key as "Authorization: Bearer <key>"');

/**
 * Gives routes the means to authenticate. Nothing is read on every request: a public route (the webhook, the
 * probes, the checkout pages) ignores an `Authorization` header it has no use for, and only a route's role
 * check (`requireRole`) reads the header.
 */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { authenticate: (key: string) => Promise<Principal | null> }) => {
    app.decorate('authenticateKey', opts.authenticate);
    app.decorateRequest('principal', null);
  },
);

/** The request's API key, authenticated: 401 for none, for a malformed header and for an unknown key alike. */
async function authenticateRequest(req: FastifyRequest): Promise<Principal> {
  if (req.principal) return req.principal;
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  const principal = match?.[1] ? await req.server.authenticateKey(match[1]) : null;
  if (!principal) throw unauthenticated();
  req.principal = principal;
  return principal;
}

/**
 * A route's role check: 401 without a valid key, 403 when the key's role is not among `roles`. Register it as
 * the route's `onRequest` hook, so that it runs before the body is read: a caller without the right key costs
 * no parsing and learns nothing about the body the route expects.
 */
export function requireRole(...roles: Role[]): (req: FastifyRequest) => Promise<void> {
  return async (req: FastifyRequest) => {
    await authenticateRequest(req);
    principalOf(req, ...roles);
  };
}

/** The caller, checked against `roles`; for handlers that need the principal itself. */
export function principalOf(req: FastifyRequest, ...roles: Role[]): Principal {
  if (!req.principal) throw unauthenticated();
  if (!roles.includes(req.principal.role)) throw forbidden(`this ${req.principal.role} key may not do this`);
  return req.principal;
}

/** An affiliate key may only read its own affiliate; admin keys read any. */
export function assertCanReadAffiliate(principal: Principal, affiliateId: string): void {
  if (principal.role === 'admin') return;
  if (principal.role === 'affiliate' && principal.affiliateId === affiliateId) return;
  throw forbidden("another affiliate's data");
}
