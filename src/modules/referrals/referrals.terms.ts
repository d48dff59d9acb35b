import { z } from 'zod';
import { amountProblem, currencyProblem } from '../../shared/money.js';

/**
 * Commission terms and the money rules of DESIGN §2, pure. A commission is computed once, with the terms
 * frozen on it; refunds reverse it cumulatively (never piecewise), so any sequence of partial refunds reverses
 * exactly the whole commission at a full refund, never more, and recomputing changes nothing.
 */

export type Terms =
  | { type: 'percent'; basis_points: number }
  | { type: 'flat'; amount: number; currency: string };

/** The terms as a commission freezes them: the rule, the rounding and the hold. */
export type FrozenTerms = Terms & { rounding: 'floor'; hold_days: number };

export const TermsSchema = z
  .discriminatedUnion('type', [
    z.object({ type: z.literal('percent'), basis_points: z.number().int().min(1).max(10_000) }),
    z.object({ type: z.literal('flat'), amount: z.number().int().positive(), currency: z.string() }),
  ])
  .superRefine((t, ctx) => {
    if (t.type !== 'flat') return;
    const currency = t.currency.toLowerCase();
    const problem = currencyProblem(currency) ?? amountProblem(t.amount, currency);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['amount'] });
  })
  .transform((t): Terms => (t.type === 'flat' ? { ...t, currency: t.currency.toLowerCase() } : t));

/**
 * What an order of `base` in `currency` earns: `floor(base × basis_points / 10000)` (BigInt, since the product
 * may pass 2^53), or the flat amount in its own currency only. Null: these terms pay nothing on such an order.
 */
export function commissionAmount(terms: Terms, base: number, currency: string): number | null {
  if (terms.type === 'flat') return terms.currency === currency ? Math.min(terms.amount, base) : null;
  return Number((BigInt(base) * BigInt(terms.basis_points)) / 10_000n);
}

/** How much of `amount` stands reversed once `refunded` of `base` is refunded: the cumulative target. */
export function reversalTarget(amount: number, base: number, refunded: number): number {
  const clamped = Math.min(Math.max(refunded, 0), base);
  return Number((BigInt(amount) * BigInt(clamped)) / BigInt(base));
}
