import { Readable } from 'node:stream';
import type {
  FastifyBaseLogger,
  FastifyInstance,
  FastifyRequest,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { forbidden, validationFailed } from '../../shared/errors.js';
import { assertCanReadAffiliate, principalOf, requireRole } from '../auth/index.js';
import {
  addCode,
  createAffiliate,
  getAffiliate,
  listAffiliates,
  recordClick,
  setCodeActive,
} from './referrals.affiliates.js';
import { getCommission, listCommissions } from './referrals.commissions.js';
import type { ReferralsContext } from './referrals.context.js';
import { createPayout, reviewCommission } from './referrals.payouts.js';
import { ReportQuerySchema, referralReport, referralReportCsv, reportWindow } from './referrals.reports.js';
import { TermsSchema } from './referrals.terms.js';

/** CONTRACT §3's affiliates, codes, `/r/:code`, commissions and payouts. */

export const CODE_PATTERN = /^[A-Za-z0-9_-]{3,32}$/;
const CodeSchema = z.string().regex(CODE_PATTERN, 'referral codes are 3-32 of A-Z a-z 0-9 _ -');
const AffiliateIdSchema = z.string().regex(/^aff_[A-Za-z0-9]{1,64}$/, 'an affiliate id');
const Page = {
  limit: z.coerce.number().int().min(1).max(100).default(20),
  starting_after: z.string().max(100).optional(),
};
const ReasonBody = z.object({ reason: z.string().trim().min(1).max(500) });

/** How long the attribution cookie lasts: the 30-day window of DESIGN §6 (last touch wins). */
export const ATTRIBUTION_COOKIE = 'ps_ref';
const ATTRIBUTION_DAYS = 30;

const actorOf = (req: FastifyRequest) => `api:${req.principal?.keyId ?? 'anonymous'}`;

/** An affiliate key reads only its own affiliate; admins read any. */
function readableAffiliate(req: FastifyRequest, wanted: string | undefined): string | null {
  const principal = principalOf(req, 'admin', 'affiliate');
  if (principal.role === 'affiliate') {
    if (wanted !== undefined && wanted !== principal.affiliateId) throw forbidden("another affiliate's data");
    return principal.affiliateId;
  }
  return wanted ?? null;
}

/** The app as the route functions below see it: schemas typed through zod. */
type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;
const tags = ['referrals'];

export function referralRoutes(ctx: ReferralsContext, storefrontUrl: string) {
  return async (instance: FastifyInstance) => {
    const app = instance.withTypeProvider<ZodTypeProvider>();
    affiliateRoutes(app, ctx);
    codeRoutes(app, ctx, storefrontUrl);
    commissionRoutes(app, ctx);
    payoutRoutes(app, ctx);
    reportRoutes(app, ctx);
  };
}

function affiliateRoutes(app: App, ctx: ReferralsContext) {
  app.post(
    '/v1/affiliates',
    {
      onRequest: requireRole('admin'),
      schema: {
        tags,
        body: z.object({
          name: z.string().trim().min(1).max(200),
          email: z.email().max(512),
          commission: TermsSchema,
        }),
      },
    },
    async (req, reply) => reply.code(201).send(await createAffiliate(ctx, req.body, actorOf(req))),
  );

  app.get(
    '/v1/affiliates',
    { onRequest: requireRole('admin', 'affiliate'), schema: { tags, querystring: z.object(Page) } },
    async (req) => {
      const own = readableAffiliate(req, undefined);
      if (own) return { data: [await getAffiliate(ctx.db, own)], has_more: false };
      return listAffiliates(ctx.db, {
        limit: req.query.limit,
        startingAfter: req.query.starting_after ?? null,
      });
    },
  );

  app.get(
    '/v1/affiliates/:id',
    {
      onRequest: requireRole('admin', 'affiliate'),
      schema: { tags, params: z.object({ id: AffiliateIdSchema }) },
    },
    async (req) => {
      assertCanReadAffiliate(principalOf(req, 'admin', 'affiliate'), req.params.id);
      return getAffiliate(ctx.db, req.params.id);
    },
  );
}

function codeRoutes(app: App, ctx: ReferralsContext, storefrontUrl: string) {
  app.post(
    '/v1/affiliates/:id/codes',
    {
      onRequest: requireRole('admin'),
      schema: { tags, params: z.object({ id: AffiliateIdSchema }), body: z.object({ code: CodeSchema }) },
    },
    async (req, reply) =>
      reply.code(201).send(await addCode(ctx, req.params.id, req.body.code, actorOf(req))),
  );

  for (const [action, active] of [
    ['deactivate', false],
    ['activate', true],
  ] as const) {
    app.post(
      `/v1/affiliates/:id/codes/:code/${action}`,
      {
        onRequest: requireRole('admin'),
        schema: { tags, params: z.object({ id: AffiliateIdSchema, code: CodeSchema }) },
      },
      async (req) => setCodeActive(ctx, req.params.id, req.params.code, active, actorOf(req)),
    );
  }

  app.get(
    '/r/:code',
    {
      schema: {
        tags,
        security: [],
        params: z.object({ code: CodeSchema }),
        querystring: z.record(z.string().max(100), z.string().max(500)),
      },
    },
    async (req, reply) => {
      const found = await recordClick(ctx, ctx.db, {
        code: req.params.code,
        ip: req.ip,
        userAgent: req.headers['user-agent'] ?? null,
        landing: Object.fromEntries(Object.entries(req.query).slice(0, 20)),
      });
      const target = new URL(storefrontUrl);
      if (found) {
        target.searchParams.set('ref', found.code);
        reply.header(
          'set-cookie',
          `${ATTRIBUTION_COOKIE}=${encodeURIComponent(found.code)}; Max-Age=${ATTRIBUTION_DAYS * 86_400}; Path=/; SameSite=Lax; HttpOnly${target.protocol === 'https:' ? '; Secure' : ''}`,
        );
      }
      // An unknown or inactive code still lands on the shop: the visitor did nothing wrong.
      return reply.redirect(target.toString(), 302);
    },
  );
}

function commissionRoutes(app: App, ctx: ReferralsContext) {
  app.get(
    '/v1/commissions',
    {
      onRequest: requireRole('admin', 'affiliate'),
      schema: {
        tags,
        querystring: z.object({
          affiliate_id: AffiliateIdSchema.optional(),
          status: z.enum(['pending', 'on_hold', 'approved', 'paid', 'reversed', 'rejected']).optional(),
          from: z.coerce.date().optional(),
          to: z.coerce.date().optional(),
          ...Page,
        }),
      },
    },
    async (req) =>
      listCommissions(ctx.db, {
        affiliateId: readableAffiliate(req, req.query.affiliate_id),
        status: req.query.status ?? null,
        from: req.query.from ?? null,
        to: req.query.to ?? null,
        limit: req.query.limit,
        startingAfter: req.query.starting_after ?? null,
      }),
  );

  app.get(
    '/v1/commissions/:id',
    {
      onRequest: requireRole('admin', 'affiliate'),
      schema: { tags, params: z.object({ id: z.string().max(100) }) },
    },
    async (req) => {
      const view = await getCommission(ctx.db, req.params.id);
      assertCanReadAffiliate(principalOf(req, 'admin', 'affiliate'), view.affiliate_id);
      return view;
    },
  );

  for (const verdict of ['approve', 'reject'] as const) {
    app.post(
      `/v1/commissions/:id/${verdict}`,
      {
        onRequest: requireRole('admin'),
        schema: { tags, params: z.object({ id: z.string().max(100) }), body: ReasonBody },
      },
      async (req) => {
        await reviewCommission(ctx, req.params.id, verdict, req.body.reason, actorOf(req));
        return getCommission(ctx.db, req.params.id);
      },
    );
  }
}

function payoutRoutes(app: App, ctx: ReferralsContext) {
  app.post(
    '/v1/payouts',
    {
      onRequest: requireRole('admin'),
      config: { idempotency: 'required' },
      schema: {
        tags,
        description:
          'Pays an affiliate the approved net in one currency, clawbacks netted. Idempotency-Key required.',
        body: z.object({ affiliate_id: AffiliateIdSchema, currency: z.string().regex(/^[a-z]{3}$/) }),
      },
    },
    async (req, reply) =>
      reply
        .code(201)
        .send(
          await createPayout(
            ctx,
            { affiliateId: req.body.affiliate_id, currency: req.body.currency },
            actorOf(req),
          ),
        ),
  );
}

function reportRoutes(app: App, ctx: ReferralsContext) {
  app.get(
    '/v1/reports/referrals',
    {
      onRequest: requireRole('admin', 'affiliate'),
      schema: {
        tags,
        description:
          'Clicks, conversions, referred revenue and commission per currency, period and affiliate; CSV with format=csv or Accept: text/csv.',
        querystring: ReportQuerySchema,
      },
    },
    async (req, reply) => {
      const affiliateId = readableAffiliate(req, req.query.affiliate_id);
      const window = reportWindow({ ...req.query, groupBy: req.query.group_by }, ctx.now());
      if (typeof window === 'string') throw validationFailed(window, { from: window });
      if (affiliateId) await getAffiliate(ctx.db, affiliateId);
      const query = { ...window, groupBy: req.query.group_by, affiliateId };
      const csv = req.query.format === 'csv' || (!req.query.format && wantsCsv(req.headers.accept));
      if (!csv) return referralReport(ctx.db, query);
      const name = `referrals-${window.from}-${window.to}${affiliateId ? `-${affiliateId}` : ''}.csv`;
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="${name}"`)
        .send(Readable.from(referralReportCsv(ctx.db, query)));
    },
  );
}

/** `Accept: text/csv` asks for CSV, unless it prefers JSON as well. */
const wantsCsv = (accept: string | undefined) =>
  accept !== undefined && /\btext\/csv\b/.test(accept) && !/application\/json/.test(accept);
