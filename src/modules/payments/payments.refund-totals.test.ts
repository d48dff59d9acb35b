import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { countedRefunds, refundedTotal } from './payments.refund-totals.js';
import type { RefundRecord } from './payments.sql.js';

const refund = (id: string, amount: number, status: string, pi: string | null = 'pi_1'): RefundRecord => ({
  kind: 'refund',
  id,
  payment_intent_id: pi,
  amount,
  status,
});
const charge = (id: string, amount: number, pi: string | null = 'pi_1'): RefundRecord => ({
  kind: 'charge',
  id,
  payment_intent_id: pi,
  amount,
  status: null,
});

describe('the refunded total of an order', () => {
  it('counts refunds known by id that have not failed, pending ones included', () => {
    const records = [
      refund('re_1', 1000, 'succeeded'),
      refund('re_2', 500, 'pending'),
      refund('re_3', 700, 'failed'),
    ];
    expect(refundedTotal(records, 'pi_1', true)).toBe(1500);
    expect(countedRefunds(records, 'pi_1')).toBe(1500);
  });

  it("takes a charge's running total when it tells more, less the refunds known to have failed", () => {
    // A refund told only through charge.refunded (made in Stripe's dashboard, refund.created not subscribed).
    expect(refundedTotal([charge('ch_1', 2000), refund('re_1', 500, 'succeeded')], 'pi_1', true)).toBe(2000);
    // The charge's total was told before its refund failed.
    expect(refundedTotal([charge('ch_1', 2000), refund('re_1', 2000, 'failed')], 'pi_1', true)).toBe(0);
  });

  it("keeps another PaymentIntent's refunds apart, and counts the order's own unnamed ones", () => {
    const records = [refund('re_1', 300, 'succeeded', 'pi_2'), refund('re_2', 200, 'succeeded', null)];
    expect(refundedTotal(records, 'pi_1', true)).toBe(200);
    expect(refundedTotal(records, 'pi_2', false)).toBe(300);
    expect(countedRefunds(records, 'pi_1')).toBe(200);
  });

  it('never falls below the counted refunds, never rises when a refund fails, and never counts beyond what was told', () => {
    const record = fc.oneof(
      fc.record({
        kind: fc.constant('refund' as const),
        id: fc.string(),
        payment_intent_id: fc.constantFrom('pi_1', 'pi_2', null),
        amount: fc.nat(10_000),
        status: fc.constantFrom('pending', 'succeeded', 'failed', 'canceled'),
      }),
      fc.record({
        kind: fc.constant('charge' as const),
        id: fc.string(),
        payment_intent_id: fc.constantFrom('pi_1', null),
        amount: fc.nat(10_000),
        status: fc.constant(null),
      }),
    );
    fc.assert(
      fc.property(fc.array(record, { maxLength: 8 }), fc.nat(7), (records, pick) => {
        const total = refundedTotal(records, 'pi_1', true);
        expect(total).toBeGreaterThanOrEqual(countedRefunds(records, 'pi_1'));
        const told = (kind: RefundRecord['kind']) =>
          records
            .filter((r) => r.kind === kind && r.payment_intent_id !== 'pi_2')
            .reduce((sum, r) => sum + r.amount, 0);
        expect(total).toBeLessThanOrEqual(Math.max(told('refund'), told('charge')));
        // One of the refunds fails: the money is the merchant's again, so the total can only fall or stay.
        const refunds = records.flatMap((r, i) => (r.kind === 'refund' ? [i] : []));
        if (refunds.length === 0) return;
        const index = refunds[pick % refunds.length]!;
        const failed = records.map((r, i) => (i === index ? { ...r, status: 'failed' } : r));
        expect(refundedTotal(failed, 'pi_1', true)).toBeLessThanOrEqual(total);
      }),
    );
  });
});
