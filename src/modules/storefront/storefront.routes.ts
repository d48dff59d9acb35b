import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../../shared/errors.js';
import { Html, html, PAGE_HEADERS, page } from '../../shared/html.js';
import { randomBase62 } from '../../shared/ids.js';
import type { CheckoutInput, CheckoutSessionView } from '../checkout/index.js';
import { CODE_PATTERN } from '../referrals/index.js';
import { CURRENCY, PRODUCTS, productById } from './storefront.catalog.js';

/** The storefront demo: a few products, a referral code, checkout through the emulator, a success page. */

export interface StorefrontDeps {
  publicUrl: string;
  /** The attribution cookie `/r/:code` sets. */
  attributionCookie: string;
  createSession(
    input: CheckoutInput,
    request: { cause: string; requestId: string | null },
  ): Promise<CheckoutSessionView>;
  orderStatus(orderId: string): Promise<string | null>;
  /** Where Checkout's hosted page lives (the emulator's origin here): the shop's form is redirected there. */
  checkoutOrigin: string;
}

/**
 * The API's CSP, but with the hosted Checkout page as a form target: a browser applies `form-action` to the
 * redirect that follows the post, too.
 */
const shopPolicy = (checkoutOrigin: string) =>
  [
    "default-src 'self'",
    "base-uri 'self'",
    "font-src 'self' data:",
    `form-action 'self' ${checkoutOrigin}`,
    "frame-ancestors 'self'",
    "img-src 'self' data:",
    "object-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
  ].join('; ');

const DEMO_ORDER = /^ord_demo_[A-Za-z0-9]{16}$/;

const dollars = (cents: number) => `$${(cents / 100).toFixed(2)}`;

/** The code the visitor arrived with: `?ref=` from the link, else the cookie; only a well-formed code. */
function attributedCode(req: FastifyRequest, cookieName: string): string | null {
  const fromQuery = (req.query as Record<string, unknown>).ref;
  const fromCookie = req.cookies[cookieName];
  const code = typeof fromQuery === 'string' ? fromQuery : fromCookie;
  return code && CODE_PATTERN.test(code) ? code : null;
}

const links = html`<p class="muted"><a href="/dashboard">Dashboard</a> · <a href="/docs">API docs</a></p>`;

function shopPage(code: string | null, error: string | undefined): string {
  const body = html`<h1>Demo shop</h1>
${error ? html`<p class="error" role="alert" data-testid="error" data-code="${error}">Refused: ${error}</p>` : ''}
${code ? html`<p class="notice" data-testid="attributed">Referred by <strong data-code="${code}">${code}</strong></p>` : ''}
<form method="post" action="/shop/checkout" class="stack" aria-label="Buy">
<fieldset><legend>Product</legend><ul class="products">${PRODUCTS.map(
    (p, i) =>
      html`<li><label><input type="radio" name="product" value="${p.id}" ${i === 0 ? new Html('checked') : ''}> ${p.name} · ${dollars(p.unit_amount)}</label><p class="muted">${p.blurb}</p></li>`,
  )}</ul></fieldset>
<label>Quantity <input name="quantity" type="number" min="1" max="10" value="1" required></label>
<label>Email <input name="email" type="email" required value="buyer@example.com"></label>
<label>Referral code <input name="referral_code" pattern="[A-Za-z0-9_\\-]{3,32}" value="${code ?? ''}"></label>
<button>Checkout</button></form>
${links}`;
  return page({ title: 'Demo shop', body });
}

function thanksPage(orderId: string): string {
  const body = html`<h1>Thank you</h1>
<p>Order <code>${orderId}</code>: <strong id="order-status" data-order="${orderId}" data-status="unknown" role="status" aria-live="polite">waiting for the payment to be confirmed…</strong></p>
<p class="muted">This page only shows what the payment service has recorded; it never marks an order paid.</p>
<p><a href="/">Back to the shop</a></p>${links}`;
  return page({ title: 'Thank you', body, scripts: ['/assets/storefront.js'] });
}

const CheckoutForm = z.object({
  product: z.string().max(40),
  quantity: z.coerce.number().int().min(1).max(10),
  email: z.email().max(512),
  referral_code: z.union([z.literal(''), z.string().regex(CODE_PATTERN)]).optional(),
});

const sendHtml = (reply: FastifyReply, status: number, text: string) =>
  reply.code(status).headers(PAGE_HEADERS).send(text);

export function storefrontRoutes(deps: StorefrontDeps) {
  const ours = new URL(deps.publicUrl).origin;
  return async (app: FastifyInstance) => {
    app.get('/', async (req, reply) => {
      const error = (req.query as Record<string, string | undefined>).error;
      reply.header('content-security-policy', shopPolicy(deps.checkoutOrigin));
      return sendHtml(reply, 200, shopPage(attributedCode(req, deps.attributionCookie), error));
    });

    app.post('/shop/checkout', async (req, reply) => {
      // A checkout from another site's form would make orders in the buyer's name: only our own page posts.
      if (req.headers.origin !== undefined && req.headers.origin !== ours)
        throw new AppError(403, 'csrf_invalid', 'the form was posted from another site');
      const form = CheckoutForm.safeParse(req.body);
      const product = form.success ? productById(form.data.product) : undefined;
      if (!form.success || !product) return reply.redirect('/?error=validation_failed', 303);
      const orderId = `ord_demo_${randomBase62(16)}`;
      try {
        const session = await deps.createSession(
          {
            order_id: orderId,
            currency: CURRENCY,
            customer_email: form.data.email,
            line_items: [
              { name: product.name, unit_amount: product.unit_amount, quantity: form.data.quantity },
            ],
            referral_code: form.data.referral_code || undefined,
            success_url: `${deps.publicUrl}/shop/thanks?order_id=${orderId}`,
            cancel_url: `${deps.publicUrl}/`,
            client_ip: req.ip,
          },
          { cause: `storefront:${randomBytes(6).toString('hex')}`, requestId: null },
        );
        return reply.redirect(session.url ?? '/', 303);
      } catch (err) {
        if (err instanceof AppError && err.status < 500)
          return reply.redirect(`/?error=${encodeURIComponent(err.code)}`, 303);
        throw err;
      }
    });

    app.get('/shop/thanks', async (req, reply) => {
      const orderId = (req.query as Record<string, unknown>).order_id;
      if (typeof orderId !== 'string' || !DEMO_ORDER.test(orderId)) return reply.redirect('/', 303);
      return sendHtml(reply, 200, thanksPage(orderId));
    });

    // The demo's own orders only (their ids are random): what the thanks page polls. Reads, never writes.
    app.get('/shop/orders/:id/status', async (req, reply) => {
      const { id } = req.params as { id: string };
      const status = DEMO_ORDER.test(id) ? await deps.orderStatus(id) : null;
      if (!status) throw new AppError(404, 'not_found', `no demo order ${id}`);
      return reply.header('cache-control', 'no-store').send({ order_id: id, status });
    });
  };
}
