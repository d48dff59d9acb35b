import type { Queryable } from '../../ports/db.js';
import type { OrderRow } from '../orders/orders.service.js';

/**
 * What the webhook handlers tell the referral program, inside the event's own transaction, so a commission
 * moves exactly when the order does and never on its own. `order` is the order after the change;
 * `cause` is `stripe:evt_…`. Implementations must be idempotent per cause and use only `q`.
 */
export interface CommissionHooks {
  /** The order has just become paid. */
  accrueCommission(q: Queryable, order: OrderRow, cause: string): Promise<void>;
  /**
   * The refunded total changed (`order.amount_refunded` is the new cumulative total, which falls again when a
   * refund fails, so the reversal is recomputed from it rather than added piecewise), or a dispute was lost.
   */
  reverseCommission(
    q: Queryable,
    order: OrderRow,
    cause: string,
    why: { reason: 'refund' | 'dispute_lost' },
  ): Promise<void>;
}

/** Until the referral program exists there is nothing to accrue or reverse. */
export const noCommissionHooks: CommissionHooks = {
  async accrueCommission() {},
  async reverseCommission() {},
};
