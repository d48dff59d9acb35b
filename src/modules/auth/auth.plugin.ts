import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { AppError, forbidden } from '../../shared/errors.js';
import type { Principal, Role } from './auth.keys.js';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const unauthenticated = () =>
  new AppError(401, 'unauthenticated', 'send a valid API key as "Authorization: Bearer <key>"');

/**
 * Reads `Authorization: Bearer <key>` on every request. A missing header leaves the request anonymous (public
 * routes need none); a header with an unknown key is refused at once, so a typo never looks like "no access".
 */
export const authPlugin = fp(
  async (app: FastifyInstance, opts: { authenticate: (key: string) => Promise<Principal | null> }) => {
    app.decorateRequest('principal', null);
    app.addHook('onRequest', async (req) => {
      const header = req.headers.authorization;
      if (!header) return;
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      const principal = match?.[1] ? await opts.authenticate(match[1]) : null;
      if (!principal) throw unauthenticated();
      req.principal = principal;
    });
  },
);

/**
 * A route's role check: 401 without a key, 403 when the key's role is not among `roles`. Register it as the
 * route's `onRequest` hook, so that it runs before the body is validated: a caller without the right key
 * learns nothing about the body the route expects.
 */
export function requireRole(...roles: Role[]): (req: FastifyRequest) => Promise<void> {
  return async (req: FastifyRequest) => {
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
