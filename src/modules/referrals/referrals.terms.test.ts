import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { amountProblem, currencyRule, MAX_AMOUNT } from '../../shared/money.js';
import { commissionAmount, reversalTarget, type Terms, TermsSchema } from './referrals.terms.js';

/**
 * The money rules of DESIGN §2 as properties of the pure functions: commissions are floor(base × bp / 10000) in
 * BigInt or a flat amount in its own currency, and reversal is cumulative (`floor(commission × refunded / base)`)
 * so no split of refunds drifts from the whole. Amounts are generated valid for USD (2 decimals), JPY (0) and
 * KWD (3 decimals, ending in 0), as `amountProblem` judges them.
 */

const RUNS = 1000;
const CURRENCIES = ['usd', 'jpy', 'kwd'] as const;
type Currency = (typeof CURRENCIES)[number];

/** A valid amount in `currency`, from `min` minor units up to Stripe's largest, with small ones and the edges likely. */
function amountIn(currency: string, min = 1): fc.Arbitrary<number> {
  const step = currencyRule(currency)!.multipleOf;
  const lo = Math.ceil(min / step);
  const hi = Math.floor(MAX_AMOUNT / step);
  return fc
    .oneof(
      fc.integer({ min: lo, max: Math.min(hi, lo + 1000) }),
      fc.integer({ min: lo, max: hi }),
      fc.integer({ min: Math.max(lo, hi - 1000), max: hi }),
    )
    .map((units) => units * step);
}

const currency = fc.constantFrom<Currency>(...CURRENCIES);
const basisPoints = fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom(1, 9999, 10_000));

/** Percent terms, or flat terms in the order's currency or in another. */
const termsFor = (orderCurrency: Currency): fc.Arbitrary<Terms> =>
  fc.oneof(
    basisPoints.map((bp): Terms => ({ type: 'percent', basis_points: bp })),
    currency.chain((c) => amountIn(c).map((amount): Terms => ({ type: 'flat', amount, currency: c }))),
    amountIn(orderCurrency).map((amount): Terms => ({ type: 'flat', amount, currency: orderCurrency })),
  );

/** An order (currency, base amount) and the terms its affiliate has. */
const order = currency.chain((c) =>
  fc.record({ currency: fc.constant(c), base: amountIn(c), terms: termsFor(c) }),
);

/** An order that earns something, with its commission. */
const earning = order
  .map((o) => ({ ...o, amount: commissionAmount(o.terms, o.base, o.currency) }))
  .filter((o): o is typeof o & { amount: number } => o.amount !== null);

/** The rule written out independently: exact integer division in BigInt. */
const floorDiv = (a: number, b: number, c: number) => Number((BigInt(a) * BigInt(b)) / BigInt(c));

const stepOf = (c: string) => currencyRule(c)!.multipleOf;

/** A refunded total of the order that is itself a valid amount in its currency: 0 up to the whole base. */
const refundedOf = (o: { base: number; currency: string }, min = 0) =>
  fc
    .integer({ min: Math.ceil(min / stepOf(o.currency)), max: o.base / stepOf(o.currency) })
    .map((units) => units * stepOf(o.currency));

/** A split of `total` into 1..8 refunds, each a valid amount in `currency`, in a random order. */
const splitOf = (total: number, currency: string) => {
  const step = stepOf(currency);
  const units = total / step;
  return fc
    .uniqueArray(fc.integer({ min: 1, max: Math.max(1, units - 1) }), { maxLength: 7 })
    .map((cuts) => {
      const points = [...new Set([0, ...cuts.filter((x) => x < units), units])].sort((a, b) => a - b);
      return points.slice(1).map((p, i) => (p - points[i]!) * step);
    })
    .chain((parts) => fc.shuffledSubarray(parts, { minLength: parts.length, maxLength: parts.length }));
};

describe('the generated amounts', () => {
  it('are valid amounts in their currency (KWD ending in 0), as amountProblem judges them', () => {
    fc.assert(
      fc.property(order, (o) => {
        expect(amountProblem(o.base, o.currency)).toBeNull();
        if (o.terms.type === 'flat') expect(amountProblem(o.terms.amount, o.terms.currency)).toBeNull();
        if (o.currency === 'kwd') expect(o.base % 10).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('are flat terms the terms schema accepts, in any case of currency code', () => {
    fc.assert(
      fc.property(
        currency.chain((c) => fc.tuple(fc.constant(c), amountIn(c), fc.boolean())),
        ([c, amount, upper]) => {
          const parsed = TermsSchema.safeParse({
            type: 'flat',
            amount,
            currency: upper ? c.toUpperCase() : c,
          });
          expect(parsed.success && parsed.data).toEqual({ type: 'flat', amount, currency: c });
        },
      ),
      { numRuns: RUNS },
    );
    // A KWD amount not ending in 0 is no amount at all, flat terms included.
    expect(TermsSchema.safeParse({ type: 'flat', amount: 1005, currency: 'kwd' }).success).toBe(false);
  });
});

describe('commissionAmount', () => {
  it('is floor(base × basis_points / 10000), exact (BigInt) up to 99,999,999 × 10,000', () => {
    fc.assert(
      fc.property(
        currency.chain((c) => amountIn(c)),
        basisPoints,
        (base, bp) => {
          const amount = commissionAmount({ type: 'percent', basis_points: bp }, base, 'usd');
          expect(amount).toBe(floorDiv(base, bp, 10_000));
          expect(Number.isSafeInteger(amount)).toBe(true);
          expect(amount).toBeGreaterThanOrEqual(0);
          expect(amount).toBeLessThanOrEqual(base);
        },
      ),
      { numRuns: RUNS },
    );
    expect(commissionAmount({ type: 'percent', basis_points: 9999 }, MAX_AMOUNT, 'usd')).toBe(99_989_999);
    expect(commissionAmount({ type: 'percent', basis_points: 10_000 }, MAX_AMOUNT, 'usd')).toBe(MAX_AMOUNT);
  });

  it('is monotonic in the base and in the basis points, and the whole base at 10000', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_AMOUNT }),
        fc.integer({ min: 1, max: MAX_AMOUNT }),
        basisPoints,
        basisPoints,
        (b1, b2, p1, p2) => {
          const at = (base: number, bp: number) =>
            commissionAmount({ type: 'percent', basis_points: bp }, base, 'jpy')!;
          const [lo, hi] = b1 <= b2 ? [b1, b2] : [b2, b1];
          const [plo, phi] = p1 <= p2 ? [p1, p2] : [p2, p1];
          expect(at(lo, p1)).toBeLessThanOrEqual(at(hi, p1));
          expect(at(lo, plo)).toBeLessThanOrEqual(at(lo, phi));
          expect(at(hi, 10_000)).toBe(hi);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('pays flat terms only in their own currency, never more than the base; another currency earns null', () => {
    fc.assert(
      fc.property(order, (o) => {
        if (o.terms.type !== 'flat') return;
        const amount = commissionAmount(o.terms, o.base, o.currency);
        if (o.terms.currency === o.currency) expect(amount).toBe(Math.min(o.terms.amount, o.base));
        else expect(amount).toBeNull();
      }),
      { numRuns: RUNS },
    );
    expect(commissionAmount({ type: 'flat', amount: 500, currency: 'usd' }, 10_000, 'jpy')).toBeNull();
    expect(commissionAmount({ type: 'flat', amount: 500, currency: 'kwd' }, 10_000, 'kwd')).toBe(500);
  });
});

describe('reversalTarget', () => {
  it('is floor(commission × refunded / base), between 0 and the commission, exact (BigInt)', () => {
    fc.assert(
      fc.property(
        earning.chain((o) => fc.record({ o: fc.constant(o), refunded: refundedOf(o) })),
        ({ o, refunded }) => {
          const target = reversalTarget(o.amount, o.base, refunded);
          expect(target).toBe(floorDiv(o.amount, refunded, o.base));
          expect(Number.isSafeInteger(target)).toBe(true);
          expect(target).toBeGreaterThanOrEqual(0);
          expect(target).toBeLessThanOrEqual(o.amount);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('reverses nothing at 0, the whole commission at the base, and clamps totals outside [0, base]', () => {
    fc.assert(
      fc.property(earning, fc.integer({ min: 1, max: MAX_AMOUNT }), (o, excess) => {
        expect(reversalTarget(o.amount, o.base, 0)).toBe(0);
        expect(reversalTarget(o.amount, o.base, o.base)).toBe(o.amount);
        expect(reversalTarget(o.amount, o.base, o.base + excess)).toBe(o.amount);
        expect(reversalTarget(o.amount, o.base, -excess)).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('is monotonic in the refunded total', () => {
    fc.assert(
      fc.property(
        earning.chain((o) =>
          fc.record({
            o: fc.constant(o),
            r1: refundedOf(o),
            r2: refundedOf(o),
          }),
        ),
        ({ o, r1, r2 }) => {
          const [lo, hi] = r1 <= r2 ? [r1, r2] : [r2, r1];
          expect(reversalTarget(o.amount, o.base, lo)).toBeLessThanOrEqual(
            reversalTarget(o.amount, o.base, hi),
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('adds up, over any split of the refunds in any order, to the target of the total: no piecewise drift', () => {
    fc.assert(
      fc.property(
        earning.chain((o) =>
          fc.record({
            o: fc.constant(o),
            total: fc.oneof(fc.constant(o.base), refundedOf(o, 1)),
          }),
        ),
        fc.context(),
        ({ o, total }, log) =>
          fc.assert(
            fc.property(splitOf(total, o.currency), (parts) => {
              log.log(`parts ${parts.join(', ')}`);
              for (const part of parts) expect(amountProblem(part, o.currency)).toBeNull();
              // The ledger's way: after each refund, bring what stands reversed to the cumulative target.
              let refunded = 0;
              let reversed = 0;
              for (const part of parts) {
                refunded += part;
                const delta = reversalTarget(o.amount, o.base, refunded) - reversed;
                expect(delta).toBeGreaterThanOrEqual(0);
                reversed += delta;
              }
              expect(refunded).toBe(total);
              expect(reversed).toBe(reversalTarget(o.amount, o.base, total));
              if (total === o.base) expect(reversed).toBe(o.amount);
              // Rounding each refund on its own never reverses more, and can reverse less.
              const piecewise = parts.reduce((sum, p) => sum + reversalTarget(o.amount, o.base, p), 0);
              expect(piecewise).toBeLessThanOrEqual(reversed);
            }),
            { numRuns: 5 },
          ),
      ),
      { numRuns: RUNS / 4 },
    );
    // Where piecewise rounding drifts: 10% of 10,000 refunded as 3,333 + 3,333 + 3,334 reverses 333 × 2 + 334.
    const parts = [3333, 3333, 3334];
    expect(parts.reduce((sum, p) => sum + reversalTarget(1000, 10_000, p), 0)).toBe(999);
    let refunded = 0;
    const deltas = parts.map((p) => {
      const before = reversalTarget(1000, 10_000, refunded);
      refunded += p;
      return reversalTarget(1000, 10_000, refunded) - before;
    });
    expect(deltas).toEqual([333, 333, 334]);
  });

  it('lands on each target again when refunds are given back (totals up and down), so replaying changes nothing', () => {
    fc.assert(
      fc.property(
        earning.chain((o) =>
          fc.record({
            o: fc.constant(o),
            totals: fc.array(refundedOf(o), { minLength: 1, maxLength: 10 }),
          }),
        ),
        ({ o, totals }) => {
          let reversed = 0;
          for (const total of [...totals, ...totals]) {
            reversed += reversalTarget(o.amount, o.base, total) - reversed;
            expect(reversed).toBe(reversalTarget(o.amount, o.base, total));
            expect(reversed).toBeGreaterThanOrEqual(0);
            expect(reversed).toBeLessThanOrEqual(o.amount);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('stays exact where the product passes 2^53 and float arithmetic would be off by one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 90_000_000, max: MAX_AMOUNT }),
        fc.integer({ min: 90_000_000, max: MAX_AMOUNT }),
        fc.integer({ min: 90_000_000, max: MAX_AMOUNT }),
        (x, y, z) => {
          const [amount, refunded, base] = [x, y, z].sort((a, b) => a - b) as [number, number, number];
          expect(reversalTarget(amount, base, refunded)).toBe(floorDiv(amount, refunded, base));
        },
      ),
      { numRuns: RUNS },
    );
    // 100% of a USD 962,286.77 order, of which 947,986.05 is refunded: Math.floor(a * r / b) says 94798604.
    const [amount, base, refunded] = [96_228_677, 96_228_677, 94_798_605];
    expect(Math.floor((amount * refunded) / base)).toBe(94_798_604);
    expect(commissionAmount({ type: 'percent', basis_points: 10_000 }, base, 'usd')).toBe(amount);
    expect(reversalTarget(amount, base, refunded)).toBe(94_798_605);
  });
});
