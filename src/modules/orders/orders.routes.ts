import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Services } from '../../services.js';
import { requireRole } from '../auth/auth.plugin.js';
import { toOrderView } from './orders.service.js';

export const OrderIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, 'order ids are 1-64 of A-Z a-z 0-9 _ -');

export async function ordersRoutes(app: FastifyInstance, { services }: { services: Services }) {
  app.withTypeProvider<ZodTypeProvider>().get(
    '/v1/orders/:id',
    {
      onRequest: requireRole('service', 'admin'),
      schema: { tags: ['orders'], params: z.object({ id: OrderIdSchema }) },
    },
    async (req) => {
      const { order, history } = await services.orders.orderWithHistory(services.db, req.params.id);
      return { ...toOrderView(order), history };
    },
  );
}
