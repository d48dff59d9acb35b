import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { refundStatusRank as rank } from './payments.objects.js';
import { countedRefunds, knownRefunds, refundBalance, refundedTotal } from './payments.refund-totals.js';
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

describe('the balance left to refund', () => {
  const known = (
    reported: RefundRecord[],
    elsewhere: RefundRecord[],
    calls: { stripe_object_id: string | null; amount: number }[],
  ) => knownRefunds(reported, elsewhere, calls, 'pi_1');

  it('counts a dashboard refund told only through its charge once Stripe lists it, beside our pending refund', () => {
    // Paid 5000; a dashboard refund of 1000 (charge total 1000); ours of 500, not reported yet.
    const reported = [charge('ch_1', 1000)];
    const ours = [{ stripe_object_id: 're_ours', amount: 500 }];
    expect(refundBalance(5000, 1000, known(reported, [], ours), 'pi_1')).toBe(4000);
    const listed = [refund('re_dash', 1000, 'succeeded')];
    expect(refundBalance(5000, 1000, known(reported, listed, ours), 'pi_1')).toBe(3500);
    // The charge's total grew to include ours, and both refunds were reported by id: still each once.
    const later = [
      charge('ch_1', 1500),
      refund('re_dash', 1000, 'succeeded'),
      refund('re_ours', 500, 'pending'),
    ];
    expect(refundBalance(5000, 1500, known(later, listed, ours), 'pi_1')).toBe(3500);
  });

  it('keeps the furthest status of a refund told twice, and counts a call Stripe has not answered', () => {
    const failed = [refund('re_1', 1000, 'failed')];
    expect(countedRefunds(known(failed, [refund('re_1', 1000, 'pending')], []), 'pi_1')).toBe(0);
    expect(countedRefunds(known([], [refund('re_1', 1000, 'failed')], []), 'pi_1')).toBe(0);
    const unanswered = [
      { stripe_object_id: null, amount: 300 },
      { stripe_object_id: null, amount: 300 },
    ];
    expect(countedRefunds(known([], [], unanswered), 'pi_1')).toBe(600);
    expect(refundBalance(1000, 0, known([], [refund('re_2', 900, 'succeeded')], unanswered), 'pi_1')).toBe(0);
  });

  it('counts every refund known by any of its channels exactly once, and never leaves more than the webhook total allows', () => {
    const status = fc.constantFrom('pending', 'succeeded', 'failed', 'canceled');
    // How one refund reached us: ours always through its call (answered or not), and perhaps reported; one made
    // elsewhere perhaps reported, perhaps listed. A call not answered yet is never reported by id here: Stripe
    // cannot tell the refund's id before it made it, and its webhook beating our own answer is not modelled.
    const told = fc.record({
      amount: fc.nat(3_000),
      ours: fc.boolean(),
      answered: fc.boolean(),
      reported: fc.option(status, { nil: undefined }),
      listed: fc.option(status, { nil: undefined }),
    });
    fc.assert(
      fc.property(
        fc.array(told, { maxLength: 8 }),
        fc.nat(20_000),
        fc.nat(20_000),
        (refunds, paid, total) => {
          const reported: RefundRecord[] = [];
          const elsewhere: RefundRecord[] = [];
          const calls: { stripe_object_id: string | null; amount: number }[] = [];
          let expected = 0;
          refunds.forEach((r, i) => {
            const id = `re_${i}`;
            const tellsReported = r.reported !== undefined && (!r.ours || r.answered);
            if (tellsReported) reported.push(refund(id, r.amount, r.reported!));
            if (r.ours) calls.push({ stripe_object_id: r.answered ? id : null, amount: r.amount });
            else if (r.listed !== undefined) elsewhere.push(refund(id, r.amount, r.listed));
            const statuses = [
              ...(tellsReported ? [r.reported!] : []),
              ...(!r.ours && r.listed !== undefined ? [r.listed] : []),
              ...(r.ours ? ['pending'] : []),
            ];
            const furthest = statuses.reduce((a, b) => (rank(b) > rank(a) ? b : a), 'pending');
            if (statuses.length > 0 && rank(furthest) < 2) expected += r.amount;
          });
          const all = known(reported, elsewhere, calls);
          expect(countedRefunds(all, 'pi_1')).toBe(expected);
          const balance = refundBalance(paid, total, all, 'pi_1');
          expect(balance).toBe(Math.max(0, paid - Math.max(total, expected)));
          // With the order's total as the webhook keeps it, whatever the lists and calls say, the balance is
          // never more than that total leaves: the refund API never offers money the webhook says is gone.
          const webhookTotal = refundedTotal(reported, 'pi_1', true);
          expect(refundBalance(paid, webhookTotal, all, 'pi_1')).toBeLessThanOrEqual(
            Math.max(0, paid - webhookTotal),
          );
        },
      ),
    );
  });
});
