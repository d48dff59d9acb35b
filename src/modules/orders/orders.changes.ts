import type { Queryable } from '../../ports/db.js';
import { AppError, notFound } from '../../shared/errors.js';
import { newId } from '../../shared/ids.js';
import { enqueueMessage } from '../notifications/index.js';
import { canChangeDispute, canTransition, diff, notificationType } from './orders.machine.js';
import {
  insertOrder,
  insertOrderEvent,
  selectHistory,
  selectOrder,
  selectOrderForUpdate,
  selectOrderIdByPaymentIntent,
  updateOrder,
} from './orders.sql.js';
import type { OrderChange, OrderPatch, OrderRow } from './orders.types.js';
import { toOrderView } from './orders.view.js';

/** What an order's first history row shows: every field a caller set, from nothing. */
const announcedFields = (o: OrderRow): Record<string, unknown> => ({
  status: o.status,
  currency: o.currency,
  amount_total: o.amount_total,
  line_items: o.line_items,
  customer_email: o.customer_email,
  checkout_session_id: o.checkout_session_id,
  payment_intent_id: o.payment_intent_id,
  referral_code: o.referral_code,
  referral_affiliate_id: o.referral_affiliate_id,
  client_ip: o.client_ip,
});

export const illegalTransition = (order: OrderRow, patch: OrderPatch) =>
  new AppError(
    409,
    'illegal_transition',
    `order ${order.id} cannot go from ${order.status} to ${patch.status}`,
    {
      details: {
        from: order.status,
        to: patch.status,
        dispute_from: order.dispute_status,
        dispute_to: patch.dispute_status,
      },
    },
  );

/**
 * Announces one change of an order, whose `order_events` diff is written, to the Orders service: the outbox
 * message, through `q` (the transaction that changed the row). Callers hold the order's row lock
 * (`lockOrder`) so that seq numbers are handed out one at a time.
 */
async function announceChange(q: Queryable, after: OrderRow, changes: OrderChange['changes'], cause: string) {
  const seq = after.seq;
  const id = newId('msg');
  const type = notificationType(changes, after.status);
  await enqueueMessage(q, {
    id,
    orderId: after.id,
    seq,
    type,
    payload: {
      id,
      type,
      order_id: after.id,
      seq,
      changes,
      order: toOrderView(after),
      cause,
      created_at: new Date().toISOString(),
    },
  });
}

/** Reads the order and locks its row until the transaction ends. */
export async function lockOrder(q: Queryable, id: string): Promise<OrderRow | null> {
  return (await q.query<OrderRow>(selectOrderForUpdate(id))).rows[0] ?? null;
}

export async function getOrder(q: Queryable, id: string): Promise<OrderRow | null> {
  return (await q.query<OrderRow>(selectOrder(id))).rows[0] ?? null;
}

/**
 * Creates the order in `awaiting_payment`: history seq 1, and its first notification. With
 * `announce: false` the row is written with seq 0 and no history yet: the first `changeOrder` then
 * announces the whole order as one diff from nothing (checkout creates the order before Stripe answers,
 * and announces it with its session id).
 */
export async function createOrder(
  q: Queryable,
  input: Omit<OrderPatch, 'status' | 'dispute_status' | 'amount_paid' | 'amount_refunded' | 'flags'> &
    Pick<OrderRow, 'id' | 'currency' | 'amount_total' | 'line_items'>,
  cause: string,
  opts: { announce?: boolean } = {},
): Promise<OrderChange> {
  const announce = opts.announce ?? true;
  const order = (await q.query<OrderRow>(insertOrder({ ...input, seq: announce ? 1 : 0 }))).rows[0]!;
  const changes = diff({}, announcedFields(order));
  if (announce) {
    await q.query(
      insertOrderEvent({ orderId: order.id, seq: order.seq, from: null, to: order.status, changes, cause }),
    );
    await announceChange(q, order, changes, cause);
  }
  return { order, seq: order.seq, changes };
}

/**
 * Applies `patch` to a locked order if the state machine allows it. Returns null when nothing would change
 * (replays are no-ops, so effects stay exactly-once); throws 409 `illegal_transition` and changes nothing
 * when the move is not allowed.
 */
export async function changeOrder(
  q: Queryable,
  order: OrderRow,
  patch: OrderPatch,
  cause: string,
): Promise<OrderChange | null> {
  if (patch.status && !canTransition(order.status, patch.status)) throw illegalTransition(order, patch);
  if (patch.dispute_status !== undefined && !canChangeDispute(order.dispute_status, patch.dispute_status)) {
    throw illegalTransition(order, patch);
  }
  const rowChanges = diff(order as unknown as Record<string, unknown>, patch as Record<string, unknown>);
  // An order not yet announced (seq 0) is announced whole: its first diff runs from nothing.
  const unannounced = order.seq === 0;
  const changes = unannounced ? diff({}, { ...announcedFields(order), ...patch }) : rowChanges;
  if (Object.keys(changes).length === 0) return null;
  const fields = Object.fromEntries(Object.entries(rowChanges).map(([field, [, next]]) => [field, next]));
  const from = unannounced ? null : order.status;
  const after = (await q.query<OrderRow>(updateOrder(order.id, fields, { from, changes, cause }))).rows[0]!;
  await announceChange(q, after, changes, cause);
  return { order: after, seq: after.seq, changes };
}

/** The order with its history of diffs, as `GET /v1/orders/:id` returns it. */
export async function orderWithHistory(q: Queryable, id: string) {
  const order = (await q.query<OrderRow>(selectOrder(id))).rows[0];
  if (!order) throw notFound(`order ${id}`);
  const history = await q.query<{
    seq: number;
    from_status: string | null;
    to_status: string;
    changes: Record<string, [unknown, unknown]>;
    cause: string;
    at: Date;
  }>(selectHistory(id, order.seq));
  return {
    order,
    history: history.rows.map((h) => ({
      seq: h.seq,
      from: h.from_status,
      to: h.to_status,
      changes: h.changes,
      cause: h.cause,
      at: new Date(h.at).toISOString(),
    })),
  };
}

/** The order an event names only by its PaymentIntent: the newest one charged through it. */
export async function orderIdByPaymentIntent(q: Queryable, paymentIntentId: string): Promise<string | null> {
  return (await q.query<{ id: string }>(selectOrderIdByPaymentIntent(paymentIntentId))).rows[0]?.id ?? null;
}
