import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError, forbidden, validationFailed } from '../../shared/errors.js';
import { type Html, html, PAGE_HEADERS, page } from '../../shared/html.js';
import type { Principal } from '../auth/index.js';
import { OrderIdSchema, orderWithHistory } from '../orders/index.js';
import { CODE_PATTERN } from '../referrals/index.js';
import { adminView, orderPage } from './dashboard.admin.js';
import { affiliateView } from './dashboard.affiliate.js';
import { allCommissions, ledgerCsv, ledgerLines } from './dashboard.data.js';
import { oncePerForm } from './dashboard.once.js';
import type { DashboardServices } from './dashboard.services.js';
import { checkForm, signedIn, sweepExpiredSessions } from './dashboard.session.js';

/** `GET /dashboard` and its forms (CONTRACT §3): sign in with an API key, then the admin or affiliate view. */

const principal = (req: FastifyRequest): Principal => req.principal!;
const actor = (req: FastifyRequest) => `dashboard:${principal(req).keyId}`;
const body = (req: FastifyRequest) => (req.body ?? {}) as Record<string, string | undefined>;

function adminOnly(req: FastifyRequest) {
  if (principal(req).role !== 'admin') throw forbidden('only an admin key may do this');
}

function header(req: FastifyRequest, csrf: string): Html {
  const p = principal(req);
  return html`<form method="post" action="/dashboard/sign-out" class="inline who"><span>${p.role}${p.affiliateId ? ` ${p.affiliateId}` : ''}</span>
<input type="hidden" name="_csrf" value="${csrf}"><button>Sign out</button></form>`;
}

const notice = (q: Record<string, string | undefined>) =>
  html`${q.notice ? html`<p class="notice" role="status" data-testid="notice">${q.notice}</p>` : ''}${q.error ? html`<p class="error" role="alert" data-testid="error" data-code="${q.error}">Refused: ${q.error}</p>` : ''}`;

function signInPage(csrf: string, error?: string): string {
  return page({
    title: 'Sign in · dashboard',
    body: html`<h1>Dashboard sign-in</h1>
${error ? html`<p class="error" role="alert" data-testid="error" data-code="${error}">Refused: ${error}</p>` : ''}
<form method="post" action="/dashboard/sign-in" class="stack"><input type="hidden" name="_csrf" value="${csrf}">
<label>API key (admin or affiliate) <input name="api_key" type="password" autocomplete="current-password" required autofocus></label>
<button>Sign in</button></form>
<p><a href="/docs">API docs</a></p>`,
  });
}

/** Runs a form's action; the browser is sent back to `back` with what happened (POST, redirect, GET). */
async function act(reply: FastifyReply, back: string, run: () => Promise<string>) {
  const sep = back.includes('?') ? '&' : '?';
  try {
    const message = await run();
    return reply.redirect(`${back}${sep}notice=${encodeURIComponent(message)}`, 303);
  } catch (err) {
    if (err instanceof AppError && err.status < 500)
      return reply.redirect(`${back}${sep}error=${encodeURIComponent(err.code)}`, 303);
    throw err;
  }
}

export function dashboardRoutes(services: DashboardServices, publicUrl: string) {
  return async (app: FastifyInstance) => {
    const form = checkForm(publicUrl);
    const session = signedIn(services.principalOfKey);

    sessionRoutes(app, services, form);

    app.get('/dashboard', { preHandler: session }, async (req, reply) => {
      const csrf = await reply.generateCsrf();
      const p = principal(req);
      const view =
        p.role === 'admin'
          ? await adminView(services, csrf)
          : await affiliateView(services, p.affiliateId!, publicUrl);
      const scripts = ['/assets/vendor/uplot/uPlot.iife.min.js', '/assets/dashboard.js'];
      const text = page({
        title: 'Dashboard',
        header: header(req, csrf),
        body: html`${notice(req.query as never)}${view}`,
        scripts,
      });
      return sendHtml(
        reply,
        200,
        text.replace('</head>', '<link rel="stylesheet" href="/assets/vendor/uplot/uPlot.min.css">\n</head>'),
      );
    });

    app.get('/dashboard/export.csv', { preHandler: session }, async (req, reply) => {
      const p = principal(req);
      const scope = p.role === 'admin' ? null : p.affiliateId;
      const lines = ledgerLines((await allCommissions(services, scope)).data);
      return reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', 'attachment; filename="referral-ledger.csv"')
        .send(Readable.from(ledgerCsv(lines)));
    });

    app.get('/dashboard/orders', { preHandler: session }, async (req, reply) => {
      adminOnly(req);
      const q = req.query as Record<string, string | undefined>;
      const id = OrderIdSchema.safeParse(q.id);
      if (!id.success) return reply.redirect('/dashboard?error=validation_failed', 303);
      const csrf = await reply.generateCsrf();
      let detail: Awaited<ReturnType<typeof orderWithHistory>>;
      try {
        detail = await orderWithHistory(services.db, id.data);
      } catch (err) {
        if (err instanceof AppError && err.code === 'not_found')
          return reply.redirect('/dashboard?error=not_found', 303);
        throw err;
      }
      const body = html`${notice(q)}${orderPage(detail, csrf)}`;
      return sendHtml(reply, 200, page({ title: `Order ${id.data}`, header: header(req, csrf), body }));
    });

    actionRoutes(app, services, { form, session });
  };
}

type Hook = (req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

const sendHtml = (reply: FastifyReply, status: number, text: string) =>
  reply.code(status).headers(PAGE_HEADERS).send(text);

function sessionRoutes(app: FastifyInstance, services: DashboardServices, form: Hook) {
  app.get('/dashboard/sign-in', async (_req, reply) =>
    sendHtml(reply, 200, signInPage(await reply.generateCsrf())),
  );

  app.post('/dashboard/sign-in', { preHandler: form }, async (req, reply) => {
    const key = body(req).api_key?.trim() ?? '';
    const found = key && key.length <= 200 ? await services.authenticate(key) : null;
    if (!found) return sendHtml(reply, 401, signInPage(await reply.generateCsrf(), 'unauthenticated'));
    if (found.role === 'service')
      return sendHtml(reply, 403, signInPage(await reply.generateCsrf(), 'forbidden'));
    // A new session id at sign-in: an id planted before it never becomes a signed-in one.
    await req.session.regenerate();
    req.session.principal = found;
    await sweepExpiredSessions(services.db);
    return reply.redirect('/dashboard', 303);
  });

  app.post('/dashboard/sign-out', { preHandler: form }, async (req, reply) => {
    await req.session.destroy();
    return reply.redirect('/dashboard/sign-in', 303);
  });
}

const AffiliateForm = z.object({
  name: z.string().trim().min(1).max(200),
  email: z.email().max(512),
  basis_points: z.coerce.number().int().min(1).max(10_000),
});

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationFailed('the form is invalid', { form: parsed.error.message });
  return parsed.data;
}

function actionRoutes(
  app: FastifyInstance,
  services: DashboardServices,
  hooks: { form: Hook; session: Hook },
) {
  // Signed in first (a signed-out browser is sent to sign in), then the form's origin and token.
  const preHandler = [hooks.session, hooks.form];
  const r = services.referrals;

  app.post('/dashboard/affiliates', { preHandler }, async (req, reply) => {
    adminOnly(req);
    return act(reply, '/dashboard', async () => {
      const f = parse(AffiliateForm, body(req));
      const created = await r.createAffiliate(
        { name: f.name, email: f.email, commission: { type: 'percent', basis_points: f.basis_points } },
        actor(req),
      );
      return `Affiliate ${created.id} created. Its API key, shown once: ${created.api_key}`;
    });
  });

  app.post('/dashboard/affiliates/:id/codes', { preHandler }, async (req, reply) => {
    adminOnly(req);
    const { id } = req.params as { id: string };
    return act(reply, '/dashboard', async () => {
      const code = parse(z.string().regex(CODE_PATTERN), body(req).code);
      const added = await r.addCode(parse(z.string().regex(/^aff_[A-Za-z0-9]{1,64}$/), id), code, actor(req));
      return `Code ${added.code} added`;
    });
  });

  app.post('/dashboard/commissions/:id/review', { preHandler }, async (req, reply) => {
    adminOnly(req);
    const { id } = req.params as { id: string };
    return act(reply, '/dashboard', async () => {
      const f = parse(
        z.object({ verdict: z.enum(['approve', 'reject']), reason: z.string().trim().min(1).max(500) }),
        body(req),
      );
      await r.reviewCommission(parse(z.string().max(100), id), f.verdict, f.reason, actor(req));
      return `Commission ${id} ${f.verdict === 'approve' ? 'cleared' : 'rejected'}`;
    });
  });

  moneyActions(app, services, preHandler);
}

/** Payouts, refunds and replays: each at most once per form (`oncePerForm`) where money moves. */
function moneyActions(app: FastifyInstance, services: DashboardServices, preHandler: Hook[]) {
  const r = services.referrals;
  app.post('/dashboard/payouts', { preHandler }, async (req, reply) => {
    adminOnly(req);
    return act(reply, '/dashboard', async () => {
      const f = parse(
        z.object({
          affiliate_id: z.string().regex(/^aff_[A-Za-z0-9]{1,64}$/),
          currency: z.string().regex(/^[a-z]{3}$/),
        }),
        body(req),
      );
      const fields = { affiliate_id: f.affiliate_id, currency: f.currency };
      const payout = await oncePerForm(
        services.db,
        principal(req),
        { action: 'payout', nonce: body(req).nonce, fields },
        () => r.createPayout({ affiliateId: f.affiliate_id, currency: f.currency }, actor(req)),
      );
      return `Payout ${payout.id} of ${payout.amount} ${payout.currency} recorded`;
    });
  });

  app.post('/dashboard/orders/:id/refunds', { preHandler }, async (req, reply) => {
    adminOnly(req);
    const orderId = parse(OrderIdSchema, (req.params as { id: string }).id);
    return act(reply, `/dashboard/orders?id=${encodeURIComponent(orderId)}`, async () => {
      const b = body(req);
      const amount = b.amount ? parse(z.coerce.number().int().positive(), b.amount) : undefined;
      const reason = b.reason?.trim() ? b.reason.trim().slice(0, 500) : undefined;
      const fields = { order_id: orderId, amount: amount ?? null, reason: reason ?? null };
      const refund = await oncePerForm(
        services.db,
        principal(req),
        { action: 'refund', nonce: b.nonce, fields },
        (requestId) => services.createRefund({ orderId, amount, reason }, { requestId }),
      );
      return `Refund ${refund.id} of ${refund.amount} asked for (${refund.status ?? 'pending'})`;
    });
  });

  app.post('/dashboard/events/:id/replay', { preHandler }, async (req, reply) => {
    adminOnly(req);
    const { id } = req.params as { id: string };
    return act(reply, '/dashboard', async () => {
      const replayed = await services.replayEvent(parse(z.string().regex(/^evt_[A-Za-z0-9_]{1,250}$/), id));
      return replayed ? `Event ${id} is ${replayed.status}` : `No event ${id}`;
    });
  });
}
