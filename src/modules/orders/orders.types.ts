import type { DisputeStatus, OrderStatus } from './orders.machine.js';
import type { MUTABLE_FIELDS } from './orders.sql.js';

export interface LineItem {
  name: string;
  unit_amount: number;
  quantity: number;
}

export interface OrderRow {
  id: string;
  status: OrderStatus;
  dispute_status: DisputeStatus | null;
  currency: string;
  amount_total: number;
  amount_paid: number;
  amount_refunded: number;
  customer_email: string | null;
  line_items: LineItem[];
  checkout_session_id: string | null;
  payment_intent_id: string | null;
  referral_code: string | null;
  /** The affiliate the referral code named at checkout, and the commission the paid order earned. */
  referral_affiliate_id: string | null;
  referral_commission_id: string | null;
  client_ip: string | null;
  flags: Array<Record<string, unknown>>;
  seq: number;
  created_at: Date;
  updated_at: Date;
}

export type OrderPatch = Partial<Pick<OrderRow, (typeof MUTABLE_FIELDS)[number]>>;

export interface OrderChange {
  order: OrderRow;
  seq: number;
  changes: Record<string, [unknown, unknown]>;
}
