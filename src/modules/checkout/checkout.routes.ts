import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { amountProblem, currencyProblem, lineItemsTotal, totalProblem } from '../../shared/money.js';
import { requireRole } from '../auth/index.js';
import { OrderIdSchema } from '../orders/index.js';
import type { CheckoutInput, CheckoutSessionView } from './checkout.create.js';
import { renderCancelPage, renderSuccessPage } from './checkout.pages.js';
import type { SessionSeen } from './checkout.sessions.js';

/** Stripe Checkout takes at most 100 line items in payment mode. */
const MAX_LINE_ITEMS = 100;
/** A product name, not a description: this keeps receipts and the hosted page readable. */
const MAX_NAME_LENGTH = 250;
/** Stripe's limit for string parameters. */
const MAX_URL_LENGTH = 5000;

const HttpUrl = z.url({ protocol: /^https?$/ }).max(MAX_URL_LENGTH);

const LineItemSchema = z.object({
  name: z.string().trim().min(1).max(MAX_NAME_LENGTH),
  // Any number here; the money rules below say precisely what is wrong with a bad one.
  unit_amount: z.number(),
  quantity: z.number(),
});

/**
 * The body of `POST /v1/checkout/sessions` (CONTRACT §3) with the money rules of DESIGN §2: a known currency,
 * integer amounts valid for its minor unit, integer quantities, and a total Stripe will charge. Every
 * problem is reported under the field it concerns; nothing is stored when any is found.
 */
export const CheckoutBodySchema = z
  .object({
    order_id: OrderIdSchema,
    currency: z.string(),
    customer_email: z.email().max(512),
    line_items: z.array(LineItemSchema).min(1, 'at least one line item is required').max(MAX_LINE_ITEMS),
    referral_code: z
      .string()
      .regex(/^[A-Za-z0-9_-]{3,32}$/, 'referral codes are 3-32 of A-Z a-z 0-9 _ -')
      .optional(),
    success_url: HttpUrl.optional(),
    cancel_url: HttpUrl.optional(),
    client_ip: z.union([z.ipv4(), z.ipv6()]).optional(),
  })
  .superRefine((body, ctx) => {
    let valid = true;
    const problem = (path: Array<string | number>, message: string | null) => {
      if (message === null) return;
      valid = false;
      ctx.addIssue({ code: 'custom', path, message });
    };
    problem(['currency'], currencyProblem(body.currency));
    body.line_items.forEach((item, i) => {
      problem(['line_items', i, 'unit_amount'], amountProblem(item.unit_amount, body.currency));
      const q = item.quantity;
      problem(
        ['line_items', i, 'quantity'],
        Number.isSafeInteger(q) && q >= 1 ? null : 'must be a whole number of at least 1',
      );
    });
    if (valid) problem(['line_items'], totalProblem(lineItemsTotal(body.line_items), body.currency));
  })
  .transform((body) => ({ ...body, currency: body.currency.toLowerCase() }));

const CheckoutSessionSchema = z.object({
  id: z.string(),
  url: z.string().nullable(),
  order_id: z.string(),
  status: z.string().nullable(),
  amount_total: z.number().int().nullable(),
  currency: z.string().nullable(),
  expires_at: z.number().int(),
});

/** What the routes call: the module's own functions, bound to its dependencies. */
export interface CheckoutActions {
  createSession(
    input: CheckoutInput,
    request: { cause: string; requestId: string | null },
  ): Promise<CheckoutSessionView>;
  describeSession(sessionId: string): Promise<SessionSeen>;
}

export const checkoutRoutes = (checkout: CheckoutActions) => async (app: FastifyInstance) => {
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    '/v1/checkout/sessions',
    {
      onRequest: requireRole('service', 'admin'),
      config: { idempotency: 'required' },
      schema: {
        tags: ['checkout'],
        description:
          'Creates the order (or reopens an unpaid one) and its Stripe Checkout Session. Idempotency-Key required.',
        body: CheckoutBodySchema,
        response: { 201: CheckoutSessionSchema },
      },
    },
    async (req, reply) => {
      const view = await checkout.createSession(req.body, {
        cause: `api:${req.id}`,
        requestId: req.idempotency?.id ?? null,
      });
      return reply.code(201).send(view);
    },
  );

  api.get(
    '/checkout/success',
    {
      schema: {
        tags: ['checkout'],
        description: 'Default success page. Shows what the service knows; never marks an order paid.',
        querystring: z.object({
          session_id: z.string().regex(/^cs_[A-Za-z0-9_]{1,250}$/, 'a Checkout Session id'),
        }),
      },
    },
    async (req, reply) => {
      const seen = await checkout.describeSession(req.query.session_id);
      return reply
        .code(seen.order ? 200 : 404)
        .type('text/html; charset=utf-8')
        .send(renderSuccessPage(seen));
    },
  );

  api.get(
    '/checkout/cancel',
    {
      schema: {
        tags: ['checkout'],
        description:
          'Default cancel page. Says nothing about the order: order ids are chosen by the shop and easy to guess.',
        querystring: z.object({ order_id: OrderIdSchema }),
      },
    },
    async (_req, reply) => reply.type('text/html; charset=utf-8').send(renderCancelPage()),
  );
};
