import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Queryable } from '../../ports/db.js';
import { forbidden } from '../../shared/errors.js';
import { type Principal, principalOf, requireRole } from '../auth/index.js';
import { affiliateStream, isStream } from './audit.chain.js';
import { listAudit, parseEntryId } from './audit.read.js';
import { verifyAudit } from './audit.verify.js';

const StreamSchema = z.string().max(200).refine(isStream, 'system, or affiliate:<affiliate id>');
const NameSchema = z.string().min(1).max(200);

const ListQuery = z.object({
  stream: StreamSchema.optional(),
  entity_type: NameSchema.optional(),
  entity_id: NameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  starting_after: z
    .string()
    .max(300)
    .refine((id) => parseEntryId(id) !== null, 'an entry id, <stream>/<seq>')
    .optional(),
});

/**
 * The stream a caller may list: an affiliate key only its own (and that one when it names none); an admin
 * any, or all of them.
 */
function readableStream(principal: Principal, wanted: string | undefined): string | undefined {
  if (principal.role !== 'affiliate') return wanted;
  if (principal.affiliateId === null) throw forbidden('this affiliate key is bound to no affiliate');
  const own = affiliateStream(principal.affiliateId);
  if (wanted !== undefined && wanted !== own) throw forbidden("another affiliate's audit stream");
  return own;
}

/** CONTRACT §3: `GET /v1/audit` (admin; an affiliate key, its own stream) and `GET /v1/audit/verify` (admin). */
export function auditRoutes(db: Queryable) {
  return async (instance: FastifyInstance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();
    const tags = ['audit'];

    app.get(
      '/v1/audit',
      { onRequest: requireRole('admin', 'affiliate'), schema: { tags, querystring: ListQuery } },
      async (req) => {
        const { stream, entity_type, entity_id, limit, starting_after } = req.query;
        const readable = readableStream(principalOf(req, 'admin', 'affiliate'), stream);
        const filter = {
          ...(readable !== undefined ? { stream: readable } : {}),
          ...(entity_type !== undefined ? { entity_type } : {}),
          ...(entity_id !== undefined ? { entity_id } : {}),
        };
        const after = starting_after === undefined ? null : parseEntryId(starting_after);
        return listAudit(db, filter, { limit, ...(after ? { startingAfter: after } : {}) });
      },
    );

    app.get('/v1/audit/verify', { onRequest: requireRole('admin'), schema: { tags } }, async () =>
      verifyAudit(db),
    );
  };
}
