import { describe, expect, it } from 'vitest';
import {
  canChangeDispute,
  canTransition,
  diff,
  notificationType,
  ORDER_STATUSES,
  type OrderStatus,
  statusAfterRefund,
} from './orders.machine.js';

describe('order state machine', () => {
  const legal: Array<[OrderStatus, OrderStatus]> = [
    ['awaiting_payment', 'processing'],
    ['awaiting_payment', 'paid'],
    ['awaiting_payment', 'payment_failed'],
    ['awaiting_payment', 'expired'],
    ['processing', 'paid'],
    ['processing', 'payment_failed'],
    ['payment_failed', 'paid'],
    ['payment_failed', 'processing'],
    ['payment_failed', 'expired'],
    ['payment_failed', 'awaiting_payment'],
    ['expired', 'awaiting_payment'],
    ['paid', 'partially_refunded'],
    ['paid', 'refunded'],
    ['partially_refunded', 'partially_refunded'],
    ['partially_refunded', 'refunded'],
    // A failed refund gives its money back to the merchant.
    ['partially_refunded', 'paid'],
    ['refunded', 'partially_refunded'],
    ['refunded', 'paid'],
  ];

  it('allows exactly the transitions of DESIGN §4', () => {
    for (const from of ORDER_STATUSES) {
      for (const to of ORDER_STATUSES) {
        const expected = from === to || legal.some(([f, t]) => f === from && t === to);
        expect(canTransition(from, to), `${from} → ${to}`).toBe(expected);
      }
    }
  });

  it('never lets a paid order go back to waiting or failing', () => {
    for (const from of ['paid', 'partially_refunded', 'refunded'] as const) {
      for (const to of ['awaiting_payment', 'processing', 'payment_failed', 'expired'] as const) {
        expect(canTransition(from, to)).toBe(false);
      }
    }
  });

  it('moves disputes open → won | lost only', () => {
    expect(canChangeDispute(null, 'open')).toBe(true);
    expect(canChangeDispute('open', 'won')).toBe(true);
    expect(canChangeDispute('open', 'lost')).toBe(true);
    expect(canChangeDispute(null, 'lost')).toBe(false);
    expect(canChangeDispute('lost', 'won')).toBe(false);
    expect(canChangeDispute('won', 'open')).toBe(true);
  });

  it('calls an order refunded only when everything paid came back, and paid when nothing did', () => {
    expect(statusAfterRefund(5000, 0)).toBe('paid');
    expect(statusAfterRefund(5000, 1)).toBe('partially_refunded');
    expect(statusAfterRefund(5000, 4999)).toBe('partially_refunded');
    expect(statusAfterRefund(5000, 5000)).toBe('refunded');
  });

  it('diffs only the fields that changed', () => {
    const before = { status: 'paid', amount_refunded: 0, flags: [] as unknown[] };
    expect(diff(before, { status: 'paid', amount_refunded: 100, flags: [] })).toEqual({
      amount_refunded: [0, 100],
    });
    expect(diff(before, { status: 'paid' })).toEqual({});
  });

  it('names notifications after disputes first, then the status', () => {
    expect(notificationType({ dispute_status: [null, 'open'] }, 'paid')).toBe('order.dispute_opened');
    expect(notificationType({ dispute_status: ['open', 'lost'] }, 'paid')).toBe('order.dispute_closed');
    expect(notificationType({ amount_refunded: [0, 5] }, 'partially_refunded')).toBe(
      'order.partially_refunded',
    );
  });
});
