import canonicalize from 'canonicalize';

/**
 * The order state machine (DESIGN §4). Pure: which status may follow which. Payment status only moves
 * forward, except that a refund which fails moves it back as far as the money still refunded says; a dispute
 * is tracked beside it in `dispute_status` and never rewinds it.
 */
export const ORDER_STATUSES = [
  'awaiting_payment',
  'processing',
  'paid',
  'payment_failed',
  'expired',
  'partially_refunded',
  'refunded',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const DISPUTE_STATUSES = ['open', 'won', 'lost'] as const;
export type DisputeStatus = (typeof DISPUTE_STATUSES)[number];

const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
  awaiting_payment: ['processing', 'paid', 'payment_failed', 'expired'],
  // A delayed method (bank debit) settles or fails; the session can no longer expire.
  processing: ['paid', 'payment_failed'],
  // A declined card leaves the Checkout Session open: the buyer may try again on it, or start a new one.
  payment_failed: ['awaiting_payment', 'processing', 'paid', 'expired'],
  // Only a new Checkout Session, created through our API, reopens an expired order.
  expired: ['awaiting_payment'],
  paid: ['partially_refunded', 'refunded'],
  // A refund that fails (Stripe reports it failed or canceled) leaves its money with the merchant: the status
  // follows the amount still refunded, back to paid when nothing is.
  partially_refunded: ['partially_refunded', 'refunded', 'paid'],
  refunded: ['partially_refunded', 'paid'],
};

/** Statuses in which money has been taken: refunds and disputes apply only here. */
export const PAID_STATUSES: readonly OrderStatus[] = ['paid', 'partially_refunded', 'refunded'];

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return from === to || NEXT[from].includes(to);
}

/** Disputes: open → won | lost, once each. A closed dispute stays closed; a new dispute may open again. */
export function canChangeDispute(from: DisputeStatus | null, to: DisputeStatus | null): boolean {
  if (from === to) return true;
  if (to === 'open') return from !== 'open';
  return from === 'open' && (to === 'won' || to === 'lost');
}

/** The status that refunds leave: `refunded` once everything paid came back, `paid` when nothing did. */
export function statusAfterRefund(amountPaid: number, amountRefunded: number): OrderStatus {
  if (amountRefunded <= 0) return 'paid';
  return amountRefunded >= amountPaid ? 'refunded' : 'partially_refunded';
}

/**
 * `{field: [old, new]}` for every field whose value changed, compared as canonical JSON: jsonb hands objects
 * back with their keys reordered, which must not count as a change.
 */
export function diff<T extends Record<string, unknown>>(
  before: T,
  after: Partial<T>,
): Record<string, [unknown, unknown]> {
  const changes: Record<string, [unknown, unknown]> = {};
  for (const [field, next] of Object.entries(after)) {
    if (next === undefined) continue;
    const prev = before[field] ?? null;
    if (canonicalize(prev) !== canonicalize(next)) changes[field] = [prev, next];
  }
  return changes;
}

/** The notification type for a change (CONTRACT §4): a dispute change names the dispute, else the status. */
export function notificationType(changes: Record<string, [unknown, unknown]>, status: OrderStatus): string {
  const dispute = changes.dispute_status;
  if (dispute) return dispute[1] === 'open' ? 'order.dispute_opened' : 'order.dispute_closed';
  return `order.${status}`;
}
