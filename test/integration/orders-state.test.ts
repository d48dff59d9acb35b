import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderPatch, OrderRow } from '../../src/modules/orders/index.js';
import * as orders from '../../src/modules/orders/index.js';
import { canTransition, ORDER_STATUSES, type OrderStatus } from '../../src/modules/orders/orders.machine.js';
import type { Queryable } from '../../src/ports/db.js';
import { AppError } from '../../src/shared/errors.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

/** A legal road from a new order to each status, so every (from, to) pair can be tried. */
const ROAD: Record<OrderStatus, OrderPatch[]> = {
  awaiting_payment: [],
  processing: [{ status: 'processing' }],
  paid: [{ status: 'paid', amount_paid: 5000, payment_intent_id: 'pi_road' }],
  payment_failed: [{ status: 'payment_failed' }],
  expired: [{ status: 'expired' }],
  partially_refunded: [
    { status: 'paid', amount_paid: 5000, payment_intent_id: 'pi_road' },
    { status: 'partially_refunded', amount_refunded: 1000 },
  ],
  refunded: [
    { status: 'paid', amount_paid: 5000, payment_intent_id: 'pi_road' },
    { status: 'refunded', amount_refunded: 5000 },
  ],
};

/** The patch that moves an order into `to`, with the fields such a move carries. */
const MOVE: Record<OrderStatus, OrderPatch> = {
  awaiting_payment: { status: 'awaiting_payment' },
  processing: { status: 'processing' },
  paid: { status: 'paid', amount_paid: 5000 },
  payment_failed: { status: 'payment_failed' },
  expired: { status: 'expired' },
  partially_refunded: { status: 'partially_refunded', amount_refunded: 2000 },
  refunded: { status: 'refunded', amount_refunded: 5000 },
};

describe.each(BACKENDS)('order state machine in the database on %s', (backend) => {
  let testDb: TestDb;
  let n = 0;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(() => testDb?.close());

  const newOrder = (id: string) => ({
    id,
    currency: 'usd',
    amount_total: 5000,
    line_items: [{ name: 'A', unit_amount: 5000, quantity: 1 }],
  });

  async function orderIn(status: OrderStatus): Promise<string> {
    const id = `ord_sm_${++n}`;
    await testDb.db.tx(async (q) => {
      await orders.createOrder(q, newOrder(id), 'test:create');
      for (const step of ROAD[status])
        await orders.changeOrder(q, (await orders.lockOrder(q, id))!, step, 'test:road');
    });
    return id;
  }

  const snapshot = async (q: Queryable, id: string) => ({
    order: (await q.query<OrderRow>('select * from orders where id = $1', [id])).rows[0],
    events: (await q.query('select * from order_events where order_id = $1 order by seq', [id])).rows,
    outbox: (await q.query('select id, seq, type from outbox where order_id = $1 order by seq', [id])).rows,
  });

  it('starts every order with one history row and one notification', async () => {
    const id = await orderIn('awaiting_payment');
    const { order, events, outbox } = await snapshot(testDb.db, id);
    expect(order).toMatchObject({ status: 'awaiting_payment', seq: 1 });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      seq: 1,
      from_status: null,
      to_status: 'awaiting_payment',
      cause: 'test:create',
    });
    expect((events[0] as { changes: Record<string, unknown> }).changes.status).toEqual([
      null,
      'awaiting_payment',
    ]);
    expect(outbox).toEqual([expect.objectContaining({ seq: 1, type: 'order.awaiting_payment' })]);
  });

  for (const from of ORDER_STATUSES) {
    for (const to of ORDER_STATUSES) {
      const legal = from !== to && canTransition(from, to);
      const moves =
        from === to && to !== 'partially_refunded' ? 'no change' : legal || from === to ? 'legal' : 'illegal';
      it(`${from} → ${to}: ${moves}`, async () => {
        const id = await orderIn(from);
        const before = await snapshot(testDb.db, id);
        const patch = MOVE[to];
        if (moves === 'illegal') {
          const err = await testDb.db
            .tx(async (q) => orders.changeOrder(q, (await orders.lockOrder(q, id))!, patch, 'test:move'))
            .catch((e: unknown) => e);
          expect(err).toBeInstanceOf(AppError);
          expect((err as AppError).code).toBe('illegal_transition');
          expect((err as AppError).status).toBe(409);
          // Nothing changed: the row, its history and its notifications are as they were.
          expect(await snapshot(testDb.db, id)).toEqual(before);
          return;
        }
        const change = await testDb.db.tx(async (q) =>
          orders.changeOrder(q, (await orders.lockOrder(q, id))!, patch, 'test:move'),
        );
        const after = await snapshot(testDb.db, id);
        if (moves === 'no change') {
          expect(change).toBeNull();
          expect(after).toEqual(before);
          return;
        }
        const seq = before.order!.seq + 1;
        expect(change!.seq).toBe(seq);
        expect(after.order).toMatchObject({ status: to, seq });
        const expected: Record<string, [unknown, unknown]> = {};
        for (const [field, value] of Object.entries(patch)) {
          const old = (before.order as unknown as Record<string, unknown>)[field];
          if (old !== value) expected[field] = [old, value];
        }
        expect(change!.changes).toEqual(expected);
        expect(after.events).toHaveLength(before.events.length + 1);
        expect(after.events.at(-1)).toMatchObject({
          seq,
          from_status: from,
          to_status: to,
          changes: expected,
          cause: 'test:move',
        });
        expect(after.outbox.at(-1)).toMatchObject({ seq, type: `order.${to}` });
      });
    }
  }

  it('moves disputes open → won | lost beside the payment status, and refuses the rest', async () => {
    const id = await orderIn('paid');
    const change = (patch: OrderPatch) =>
      testDb.db.tx(async (q) =>
        orders.changeOrder(q, (await orders.lockOrder(q, id))!, patch, 'test:dispute'),
      );
    await expect(change({ dispute_status: 'lost' })).rejects.toMatchObject({ code: 'illegal_transition' });
    expect((await change({ dispute_status: 'open' }))!.changes).toEqual({ dispute_status: [null, 'open'] });
    expect((await change({ dispute_status: 'won' }))!.changes).toEqual({ dispute_status: ['open', 'won'] });
    await expect(change({ dispute_status: 'lost' })).rejects.toMatchObject({ code: 'illegal_transition' });
    const { order, outbox } = await snapshot(testDb.db, id);
    expect(order).toMatchObject({ status: 'paid', dispute_status: 'won' });
    expect(outbox.slice(-2).map((m) => (m as { type: string }).type)).toEqual([
      'order.dispute_opened',
      'order.dispute_closed',
    ]);
  });

  it('sees no change in JSON fields that come back from jsonb with their keys reordered', async () => {
    const id = await orderIn('awaiting_payment');
    const change = await testDb.db.tx(async (q) =>
      orders.changeOrder(
        q,
        (await orders.lockOrder(q, id))!,
        { line_items: [{ quantity: 1, unit_amount: 5000, name: 'A' }] },
        'test:same',
      ),
    );
    expect(change).toBeNull();
  });

  it('returns the history through orderWithHistory in seq order', async () => {
    const id = await orderIn('refunded');
    const { history } = await orders.orderWithHistory(testDb.db, id);
    expect(history.map((h) => [h.seq, h.from, h.to])).toEqual([
      [1, null, 'awaiting_payment'],
      [2, 'awaiting_payment', 'paid'],
      [3, 'paid', 'refunded'],
    ]);
    expect(history[2]!.changes).toEqual({ status: ['paid', 'refunded'], amount_refunded: [0, 5000] });
  });

  it('announces an order created unannounced as one diff from nothing, even when the patch sets nothing new', async () => {
    const id = `ord_sm_${++n}`;
    const first = await testDb.db.tx(async (q) => {
      await orders.createOrder(q, newOrder(id), 'test:create', { announce: false });
      const order = (await orders.lockOrder(q, id))!;
      expect(order.seq).toBe(0);
      return orders.changeOrder(q, order, { currency: 'usd' }, 'test:announce');
    });
    expect(first?.seq).toBe(1);
    expect(first?.changes).toMatchObject({ status: [null, 'awaiting_payment'], amount_total: [null, 5000] });
    const { history } = await orders.orderWithHistory(testDb.db, id);
    expect(history.map((h) => [h.seq, h.from])).toEqual([[1, null]]);
    const outbox = await testDb.db.query('select seq from outbox where order_id = $1', [id]);
    expect(outbox.rows).toEqual([{ seq: 1 }]);
  });

  it('refuses to set a column that is not an order field, and changes nothing', async () => {
    const id = await orderIn('awaiting_payment');
    const patch = { 'status = $2, seq': 99 } as unknown as OrderPatch;
    await expect(
      testDb.db.tx(async (q) => orders.changeOrder(q, (await orders.lockOrder(q, id))!, patch, 'test:bad')),
    ).rejects.toThrow(/not mutable/);
    expect((await orders.getOrder(testDb.db, id))?.seq).toBe(1);
  });
});
