import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder, type OrderRow } from '../../src/modules/orders/index.js';
import { randomBase62 } from '../../src/shared/ids.js';
import { amountProblem, currencyRule, MAX_AMOUNT } from '../../src/shared/money.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createAffiliate, deliverSigned, referredCheckout } from '../helpers/referrals.js';
import { events, type FixtureEvent, type OrderFixture } from '../helpers/stripe-events.js';

/**
 * The money invariants of DESIGN §2 against the real ledger: a referred order in USD, JPY or KWD, paid through
 * our API and a signed `checkout.session.completed`, then a random history of refunds (some given back as
 * failed, charge running totals in between) and perhaps a dispute, delivered in a random order with random
 * duplicates. The commission must keep 0 ≤ reversed ≤ accrued, net = Σ of its entries, reach net 0 at a full
 * refund or a lost dispute, and end exactly as the same history delivered in its natural order ends.
 */

const NUM_RUNS = 10;
const CURRENCIES = ['usd', 'jpy', 'kwd'] as const;
type Currency = (typeof CURRENCIES)[number];

type CommissionTerms =
  | { type: 'percent'; basis_points: number }
  | { type: 'flat'; amount: number; currency: Currency };

interface RefundStep {
  amount: number;
  /** What `refund.created` says. */
  status: 'succeeded' | 'pending';
  /** A `refund.updated` later says it failed: its money is the merchant's again. */
  fails: boolean;
  /** A `charge.refunded` with the charge's running total follows it. */
  charge: boolean;
}

interface Scenario {
  currency: Currency;
  amount: number;
  terms: CommissionTerms;
  refunds: RefundStep[];
  dispute: 'none' | 'won' | 'lost';
}

/** The smallest charge our checkout takes, and the step amounts go in, in each currency. */
const stepOf = (c: Currency) => currencyRule(c)!.multipleOf;
const minimumOf = (c: Currency) => currencyRule(c)!.minimumCharge ?? stepOf(c);

/** A valid amount in `c` between `min` and `max` minor units, small ones likely. */
const amountIn = (c: Currency, min: number, max = MAX_AMOUNT) => {
  const lo = Math.ceil(min / stepOf(c));
  const hi = Math.floor(max / stepOf(c));
  return fc
    .oneof(fc.integer({ min: lo, max: Math.min(hi, lo + 5000) }), fc.integer({ min: lo, max: hi }))
    .map((units) => units * stepOf(c));
};

const termsFor = (c: Currency): fc.Arbitrary<CommissionTerms> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.integer({ min: 1, max: 10_000 }).map((bp) => percent(bp)) },
    { weight: 1, arbitrary: fc.constantFrom(1, 10_000).map((bp) => percent(bp)) },
    { weight: 2, arbitrary: amountIn(c, stepOf(c), 100_000).map((amount) => flat(amount, c)) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom<Currency>(...CURRENCIES)
        .chain((other) => amountIn(other, stepOf(other), 100_000).map((amount) => flat(amount, other))),
    },
  );
const percent = (bp: number): CommissionTerms => ({ type: 'percent', basis_points: bp });
const flat = (amount: number, currency: Currency): CommissionTerms => ({ type: 'flat', amount, currency });

/** Refunds whose running total never passes the order amount; `full`: they add up to all of it. */
const refundsOf = (c: Currency, amount: number): fc.Arbitrary<RefundStep[]> => {
  const units = amount / stepOf(c);
  return fc
    .record({
      cuts: fc.uniqueArray(fc.integer({ min: 1, max: units }), { minLength: 1, maxLength: 4 }),
      full: fc.boolean(),
    })
    .chain(({ cuts, full }) => {
      const points = [...new Set([0, ...cuts, ...(full ? [units] : [])])].sort((a, b) => a - b);
      const amounts = points.slice(1).map((p, i) => (p - points[i]!) * stepOf(c));
      return fc.tuple(
        ...amounts.map((a) =>
          fc.record({
            amount: fc.constant(a),
            status: fc.constantFrom<RefundStep['status']>('succeeded', 'pending'),
            fails: fc.oneof(
              { weight: 2, arbitrary: fc.constant(false) },
              { weight: 1, arbitrary: fc.constant(true) },
            ),
            charge: fc.boolean(),
          }),
        ),
      );
    });
};

const scenarios: fc.Arbitrary<Scenario> = fc.constantFrom<Currency>(...CURRENCIES).chain((currency) =>
  amountIn(currency, minimumOf(currency)).chain((amount) =>
    fc.record({
      currency: fc.constant(currency),
      amount: fc.constant(amount),
      terms: termsFor(currency),
      refunds: refundsOf(currency, amount),
      dispute: fc.constantFrom<Scenario['dispute']>('none', 'won', 'lost'),
    }),
  ),
);

/** How many events `history` makes besides the payment. */
const restCount = (s: Scenario) =>
  s.refunds.reduce((n, r) => n + 1 + (r.charge ? 1 : 0) + (r.fails ? 1 : 0), 0) +
  (s.dispute === 'none' ? 0 : 2);

/**
 * A delivery plan over the payment (index 0) and the rest (1..n): a permutation, duplicates inserted at random
 * places, and a shuffle of the events' `created` stamps, which is the order the inbox wakes deferred events in.
 */
const plans = scenarios.chain((s) => {
  const all = [...Array(restCount(s) + 1).keys()];
  return fc.record({
    s: fc.constant(s),
    order: fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
    duplicates: fc.array(fc.tuple(fc.nat(all.length - 1), fc.nat()), { maxLength: all.length }),
    created: fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }),
  });
});

/** The whole history Stripe would send for the order, in the order it happened: the payment first. */
function history(fx: OrderFixture, s: Scenario): FixtureEvent[] {
  const all: FixtureEvent[] = [events.completed(fx)];
  let told = 0;
  s.refunds.forEach((r, i) => {
    told += r.amount;
    all.push(events.refund(fx, `re_${fx.id}_${i}`, r.amount, { status: r.status }));
    if (r.charge) all.push(events.chargeRefunded(fx, told));
  });
  s.refunds.forEach((r, i) => {
    if (r.fails)
      all.push(events.refund(fx, `re_${fx.id}_${i}`, r.amount, { status: 'failed', type: 'refund.updated' }));
  });
  if (s.dispute !== 'none') {
    const created = Math.floor(Date.now() / 1000);
    all.push(events.dispute(fx, `dp_${fx.id}`, 'needs_response', created, 'charge.dispute.created'));
    all.push(events.dispute(fx, `dp_${fx.id}`, s.dispute, created, 'charge.dispute.closed'));
  }
  return all;
}

const isDispute = (e: FixtureEvent) => e.type.startsWith('charge.dispute.');

/**
 * The plan applied to a history. A dispute names only the charge and PaymentIntent, which the order learns from
 * its payment (a fixture's PaymentIntent is unknown to the emulator), so the payment comes before any dispute
 * event; refunds and charge totals may come before it and wait, deferred.
 */
function arrange(all: FixtureEvent[], plan: { order: number[]; duplicates: [number, number][] }) {
  const sequence = plan.order.map((i) => all[i]!);
  for (const [which, at] of plan.duplicates) sequence.splice(at % (sequence.length + 1), 0, all[which]!);
  const firstDispute = sequence.findIndex(isDispute);
  const payment = sequence.indexOf(all[0]!);
  if (firstDispute !== -1 && payment > firstDispute) {
    sequence.splice(payment, 1);
    sequence.splice(firstDispute, 0, all[0]!);
  }
  return sequence;
}

/** What DESIGN §2 says the commission earns: floor(base × bp / 10000), or the flat amount in its own currency. */
function expectedAmount(s: Scenario): number | null {
  if (s.terms.type === 'percent') return Number((BigInt(s.amount) * BigInt(s.terms.basis_points)) / 10_000n);
  return s.terms.currency === s.currency ? Math.min(s.terms.amount, s.amount) : null;
}

/** What stands refunded at the end: every refund that did not fail (each was told by id). */
const refundedOf = (s: Scenario) => s.refunds.filter((r) => !r.fails).reduce((t, r) => t + r.amount, 0);

interface CommissionView {
  id: string;
  status: string;
  amount: number;
  base_amount: number;
  reversed_amount: number;
  net_amount: number;
  dispute_open: boolean;
  flags: Array<{ rule: string; mode: string }>;
  entries: Array<{ type: string; amount: number; cause: string }>;
}

describe.each(BACKENDS)('the commission ledger on %s (property)', (backend) => {
  let ctx: TestContext;
  let admin: string;
  let service: string;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { emulator: true });
    admin = await ctx.bearer('admin');
    service = await ctx.bearer('service');
  });
  afterAll(() => ctx?.close());

  const deliver = (e: FixtureEvent) => deliverSigned(ctx, e);

  /** A referred order checked out through our API (not paid yet): its fixture for the events. */
  const referredOrder = (code: string, s: Scenario): Promise<OrderFixture> =>
    referredCheckout(ctx, service, { code, amount: s.amount, currency: s.currency });

  /** Runs the retry worker until nothing is due, then checks every event of the order was applied. */
  async function settled(orderId: string) {
    for (let i = 0; i < 20 && (await ctx.modules.stripeEvents.applyDue()) > 0; i++);
    const { rows } = await ctx.testDb.db.query<{ id: string; type: string; status: string; reason: string }>(
      `select id, type, status, reason from stripe_events where order_id = $1 and status <> 'done'`,
      [orderId],
    );
    expect(rows).toEqual([]);
  }

  /** The order's commission through the admin API, checked against the database; null when none was earned. */
  async function commissionOf(orderId: string): Promise<CommissionView | null> {
    const order = (await getOrder(ctx.testDb.db, orderId)) as OrderRow;
    const { rows } = await ctx.testDb.db.query<{ id: string; status: string; amount: unknown; net: unknown }>(
      `select c.id, c.status, c.amount,
              (select coalesce(sum(e.amount), 0) from commission_entries e
                where e.commission_id = c.id and e.type <> 'payout') as net
         from commissions c where c.order_id = $1`,
      [orderId],
    );
    if (order.referral_commission_id === null) {
      expect(rows).toEqual([]);
      return null;
    }
    const res = await ctx.app.inject({
      method: 'GET',
      url: `/v1/commissions/${order.referral_commission_id}`,
      headers: { authorization: admin },
    });
    expect(res.statusCode, res.body).toBe(200);
    const c = res.json() as CommissionView;
    expect(rows).toEqual([expect.objectContaining({ id: c.id, status: c.status })]);
    expect(Number(rows[0]!.amount)).toBe(c.amount);
    // net_amount is the sum of the non-payout entries, in the database as in the view.
    expect(Number(rows[0]!.net)).toBe(c.net_amount);
    const entries = c.entries.filter((e) => e.type !== 'payout');
    expect(entries.reduce((sum, e) => sum + e.amount, 0)).toBe(c.net_amount);
    return c;
  }

  /** A referred order of `s` whose history is delivered as `arrange` lays it out; its commission at the end. */
  async function play(code: string, s: Scenario, arrangeHistory: (all: FixtureEvent[]) => FixtureEvent[]) {
    const fx = await referredOrder(code, s);
    for (const e of arrangeHistory(history(fx, s))) await deliver(e);
    await settled(fx.id);
    const o = (await getOrder(ctx.testDb.db, fx.id)) as OrderRow;
    expect(o).toMatchObject({ amount_paid: s.amount, amount_refunded: refundedOf(s) });
    return commissionOf(fx.id);
  }

  /** The invariants of DESIGN §2 and the cumulative rule, for the commission `s` ends with. */
  function expectLedger(s: Scenario, c: CommissionView | null) {
    const amount = expectedAmount(s);
    if (amount === null) {
      // Flat terms in another currency earn nothing on this order.
      expect(c).toBeNull();
      return;
    }
    if (!c) throw new Error('no commission was accrued');
    expect(c.amount).toBe(amount);
    expect(c.base_amount).toBe(s.amount);
    expect(c.entries.filter((e) => e.type === 'accrual').map((e) => e.amount)).toEqual([amount]);
    expect(c.entries.every((e) => e.type === 'accrual' || e.type === 'reversal')).toBe(true);
    expect(c.reversed_amount).toBeGreaterThanOrEqual(0);
    expect(c.reversed_amount).toBeLessThanOrEqual(c.amount);
    expect(c.net_amount).toBe(c.amount - c.reversed_amount);
    expect(c.dispute_open).toBe(false);

    // What stands reversed is the share of what stands refunded (cumulative, floor), or everything once lost.
    const refunded = refundedOf(s);
    const lost = s.dispute === 'lost';
    const reversed = lost ? amount : Number((BigInt(amount) * BigInt(refunded)) / BigInt(s.amount));
    expect(c.reversed_amount).toBe(reversed);
    if ((refunded === s.amount || lost) && amount > 0) {
      expect(c).toMatchObject({ net_amount: 0, status: 'reversed' });
    } else {
      // Partial refunds keep the status the commission was accrued with: on_hold when a guard enforced a hold.
      expect(c.status).toBe(c.flags.some((f) => f.mode === 'enforce') ? 'on_hold' : 'pending');
    }
  }

  const outcome = (v: CommissionView | null) =>
    v && { amount: v.amount, reversed_amount: v.reversed_amount, net_amount: v.net_amount, status: v.status };

  it('keeps 0 ≤ reversed ≤ accrued and net = Σ entries, nets 0 at a full refund or lost dispute, for any order and duplication of refund and dispute events (property)', async () => {
    await fc.assert(
      fc.asyncProperty(plans, async ({ s, ...plan }) => {
        const code = `PR${randomBase62(8)}`;
        await createAffiliate(ctx, admin, [code], s.terms);
        // The history delivered as planned …
        const planned = await play(code, s, (all) => {
          const at = Math.floor(Date.now() / 1000);
          all.forEach((e, i) => {
            e.created = at + plan.created[i]!;
          });
          return arrange(all, plan);
        });
        // … and the same history, in its natural order and once each, to a twin order of the same affiliate.
        const natural = await play(code, s, (all) => all);
        expectLedger(s, planned);
        expectLedger(s, natural);
        // Order and duplication change nothing of the outcome.
        expect(outcome(planned)).toEqual(outcome(natural));
      }),
      { numRuns: NUM_RUNS, endOnFailure: true },
    );
  }, 180_000);

  // Two histories that break the invariants, reduced by hand from what the property finds (the second within a
  // few runs; the first is rarer, it needs a lost dispute between a full refund and that refund failing), kept as
  // examples so that every run tries them.

  it('keeps a lost dispute lost when a refund that had already reversed everything fails after it', async () => {
    // 10% of USD 100.00; the whole order refunded, then disputed and lost, then the refund fails.
    const s: Scenario = {
      currency: 'usd',
      amount: 10_000,
      terms: percent(1000),
      refunds: [{ amount: 10_000, status: 'succeeded', fails: true, charge: false }],
      dispute: 'lost',
    };
    const code = `PR${randomBase62(8)}`;
    await createAffiliate(ctx, admin, [code], s.terms);
    // history: 0 completed, 1 refund.created, 2 refund.updated (failed), 3 dispute.created, 4 dispute.closed (lost)
    const planned = await play(code, s, (all) => [0, 1, 3, 4, 2].map((i) => all[i]!));
    const natural = await play(code, s, (all) => all);
    expectLedger(s, natural);
    expectLedger(s, planned);
    expect(outcome(planned)).toEqual(outcome(natural));
  });

  it('keeps a held commission on_hold when a refund that netted it to 0 is given back', async () => {
    // 10% of JPY 200,000 (held: at or above the ¥150,000 manual-review amount), refunded as 120,000 + 80,000,
    // and the 120,000 fails afterwards.
    const s: Scenario = {
      currency: 'jpy',
      amount: 200_000,
      terms: percent(1000),
      refunds: [
        { amount: 120_000, status: 'succeeded', fails: true, charge: false },
        { amount: 80_000, status: 'succeeded', fails: false, charge: false },
      ],
      dispute: 'none',
    };
    const code = `PR${randomBase62(8)}`;
    await createAffiliate(ctx, admin, [code], s.terms);
    // history: 0 completed, 1 refund 120,000, 2 refund 80,000, 3 the 120,000 failed
    const planned = await play(code, s, (all) => [0, 3, 1, 2].map((i) => all[i]!));
    const natural = await play(code, s, (all) => all);
    expect(planned).toMatchObject({ status: 'on_hold', reversed_amount: 8000, net_amount: 12_000 });
    expectLedger(s, planned);
    expectLedger(s, natural);
    expect(outcome(planned)).toEqual(outcome(natural));
  });
});

describe('the generated histories', () => {
  it('generates only amounts the checkout accepts: valid in their currency, KWD ending in 0', () => {
    fc.assert(
      fc.property(scenarios, (s) => {
        expect(amountProblem(s.amount, s.currency)).toBeNull();
        expect(s.amount).toBeGreaterThanOrEqual(minimumOf(s.currency));
        if (s.terms.type === 'flat') expect(amountProblem(s.terms.amount, s.terms.currency)).toBeNull();
        const told = s.refunds.reduce((t, r) => t + r.amount, 0);
        expect(told).toBeLessThanOrEqual(s.amount);
        for (const r of s.refunds) expect(amountProblem(r.amount, s.currency)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });
});
