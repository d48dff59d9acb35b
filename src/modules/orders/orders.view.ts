import type { OrderRow } from './orders.types.js';

/** The order as the API and notifications show it (CONTRACT §3), without history. */
export function toOrderView(o: OrderRow) {
  return {
    id: o.id,
    status: o.status,
    dispute_status: o.dispute_status,
    currency: o.currency,
    amount_total: o.amount_total,
    amount_paid: o.amount_paid,
    amount_refunded: o.amount_refunded,
    customer_email: o.customer_email,
    checkout_session_id: o.checkout_session_id,
    payment_intent_id: o.payment_intent_id,
    referral: o.referral_code
      ? {
          code: o.referral_code,
          affiliate_id: o.referral_affiliate_id,
          commission_id: o.referral_commission_id,
        }
      : null,
    flags: o.flags,
  };
}
