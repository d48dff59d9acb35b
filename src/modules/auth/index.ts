import type { FastifyInstance } from 'fastify';
import type { Queryable } from '../../ports/db.js';
import { defineModule } from '../module.js';
import { authenticate } from './auth.keys.js';
import { authPlugin } from './auth.plugin.js';

/** API keys and roles (DESIGN §7). Owns `api_keys`. */
export {
  authenticate,
  type CreatedKey,
  createKey,
  type Principal,
  principalOfKey,
  ROLES,
  type Role,
  revokeKeysNamed,
} from './auth.keys.js';
export { assertCanReadAffiliate, principalOf, requireRole } from './auth.plugin.js';

export function createAuthModule(deps: { db: Queryable }) {
  return defineModule({
    name: 'auth',
    plugin: async (app: FastifyInstance) => {
      await app.register(authPlugin, { authenticate: (key) => authenticate(deps.db, key) });
    },
  });
}
