import type { Queryable } from '../../ports/db.js';
import { defineModule } from '../module.js';
import { ordersRoutes } from './orders.routes.js';

/**
 * Orders (DESIGN §4): the order row, its state machine and its history of state diffs. Owns `orders` and
 * `order_events`. Every change goes through `changeOrder` in the caller's transaction, which writes the diff
 * and queues its notification with it.
 */
export {
  changeOrder,
  createOrder,
  getOrder,
  lockOrder,
  orderIdByPaymentIntent,
  orderWithHistory,
} from './orders.changes.js';
export {
  canChangeDispute,
  canTransition,
  type DisputeStatus,
  type OrderStatus,
  PAID_STATUSES,
  statusAfterRefund,
} from './orders.machine.js';
export { OrderIdSchema } from './orders.routes.js';
export type { LineItem, OrderChange, OrderPatch, OrderRow } from './orders.types.js';

export function createOrdersModule(deps: { db: Queryable }) {
  return defineModule({ name: 'orders', routes: ordersRoutes(deps.db) });
}
