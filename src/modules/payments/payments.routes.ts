import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireRole } from '../auth/index.js';
import { OrderIdSchema } from '../orders/index.js';
import type { RefundInput, RefundView } from './payments.refund-requests.js';

/** The reason travels in the refund's Stripe metadata, whose values stop at 500 characters. */
const MAX_REASON_LENGTH = 500;

const RefundBodySchema = z.object({
  // Integer and minor-unit rules depend on the order's currency, so the service checks them.
  amount: z.number().positive('must be more than 0').optional(),
  reason: z.string().trim().min(1).max(MAX_REASON_LENGTH).optional(),
});

const RefundSchema = z.object({
  id: z.string(),
  order_id: z.string(),
  amount: z.number().int(),
  status: z.string().nullable(),
});

export const refundRoutes =
  (createRefund: (input: RefundInput, request: { requestId: string | null }) => Promise<RefundView>) =>
  async (app: FastifyInstance) => {
    app.withTypeProvider<ZodTypeProvider>().post(
      '/v1/orders/:id/refunds',
      {
        onRequest: requireRole('admin'),
        config: { idempotency: 'required' },
        schema: {
          tags: ['orders'],
          description:
            'Refunds all (no amount) or part of a paid order through Stripe. Idempotency-Key required.',
          params: z.object({ id: OrderIdSchema }),
          // No body at all means "refund the rest", as does `{}`.
          body: RefundBodySchema.nullish(),
          response: { 201: RefundSchema },
        },
      },
      async (req, reply) => {
        const refund = await createRefund(
          { orderId: req.params.id, amount: req.body?.amount, reason: req.body?.reason },
          { requestId: req.idempotency?.id ?? null },
        );
        return reply.code(201).send(refund);
      },
    );
  };
