import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Queryable } from '../../ports/db.js';
import { requireRole } from '../auth/index.js';
import { orderWithHistory } from './orders.changes.js';
import { toOrderView } from './orders.view.js';

export const OrderIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'order ids are 1-64 of A-Z a-z 0-9 _ -');

export function ordersRoutes(db: Queryable) {
  return async (app: FastifyInstance) => {
    app.withTypeProvider<ZodTypeProvider>().get(
      '/v1/orders/:id',
      {
        onRequest: requireRole('service', 'admin'),
        schema: { tags: ['orders'], params: z.object({ id: OrderIdSchema }) },
      },
      async (req) => {
        const { order, history } = await orderWithHistory(db, req.params.id);
        return { ...toOrderView(order), history };
      },
    );
  };
}
