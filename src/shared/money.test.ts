import { describe, expect, it } from 'vitest';
import {
  amountProblem,
  CURRENCIES,
  currencyProblem,
  currencyRule,
  formatAmount,
  lineItemsTotal,
  MAX_AMOUNT,
  toSafeNumber,
  totalProblem,
} from './money.js';

describe('currency table', () => {
  it("holds Stripe's zero-decimal currencies with exponent 0", () => {
    for (const c of 'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf'.split(' ')) {
      expect(currencyRule(c), c).toMatchObject({ exponent: 0, multipleOf: 1 });
    }
  });

  it('holds the three-decimal currencies with amounts in tens', () => {
    for (const c of ['bhd', 'jod', 'kwd', 'omr', 'tnd']) {
      expect(currencyRule(c), c).toMatchObject({ exponent: 3, multipleOf: 10 });
    }
  });

  it('charges ISK as two-decimal in hundreds, and common currencies as two-decimal', () => {
    expect(currencyRule('isk')).toMatchObject({ exponent: 2, multipleOf: 100 });
    for (const c of ['usd', 'eur', 'gbp', 'cad', 'aud', 'chf', 'sek', 'inr', 'brl', 'mxn']) {
      expect(currencyRule(c), c).toMatchObject({ exponent: 2, multipleOf: 1 });
    }
    expect(CURRENCIES.size).toBeGreaterThan(100);
  });

  it('finds currencies in any case and refuses unknown ones with a reason', () => {
    expect(currencyRule('USD')?.code).toBe('usd');
    expect(currencyProblem('usd')).toBeNull();
    expect(currencyProblem('xyz')).toMatch(/not a currency Stripe charges in/);
    expect(currencyProblem('us')).toMatch(/three-letter/);
  });
});

describe('amountProblem', () => {
  it('accepts integers within the rules', () => {
    expect(amountProblem(2500, 'usd')).toBeNull();
    expect(amountProblem(0, 'usd')).toBeNull();
    expect(amountProblem(5001, 'jpy')).toBeNull();
    expect(amountProblem(1230, 'kwd')).toBeNull();
    expect(amountProblem(10000, 'isk')).toBeNull();
    expect(amountProblem(MAX_AMOUNT, 'usd')).toBeNull();
  });

  it('refuses fractions, non-numbers and unsafe integers, explaining minor units', () => {
    expect(amountProblem(25.5, 'usd')).toMatch(
      /integer amount in the currency's minor unit \(2500 = 25 USD\)/,
    );
    expect(amountProblem('2500', 'usd')).toMatch(/integer/);
    expect(amountProblem(2 ** 53, 'usd')).toMatch(/integer/);
    expect(amountProblem(Number.NaN, 'usd')).toMatch(/integer/);
  });

  it('refuses negative amounts and amounts over the maximum', () => {
    expect(amountProblem(-1, 'usd')).toMatch(/negative/);
    expect(amountProblem(MAX_AMOUNT + 1, 'usd')).toMatch(/at most 99999999/);
  });

  it('explains the three-decimal rule and suggests an amount', () => {
    const problem = amountProblem(1234, 'kwd');
    expect(problem).toMatch(/KWD is a three-decimal currency \(1000 = 1 KWD\)/);
    expect(problem).toMatch(/last digit to be 0/);
    expect(problem).toMatch(/use 1230/);
  });

  it('explains the ISK rule', () => {
    expect(amountProblem(12345, 'isk')).toMatch(/divisible by 100.*use 12300/);
  });
});

describe('totals', () => {
  it('sums in BigInt, exactly past 2^53', () => {
    const total = lineItemsTotal([
      { unit_amount: MAX_AMOUNT, quantity: Number.MAX_SAFE_INTEGER },
      { unit_amount: 1, quantity: 1 },
    ]);
    expect(total).toBe(BigInt(MAX_AMOUNT) * BigInt(Number.MAX_SAFE_INTEGER) + 1n);
    expect(totalProblem(total, 'usd')).toMatch(/over 99999999/);
    expect(() => toSafeNumber(total)).toThrow(RangeError);
    expect(toSafeNumber(lineItemsTotal([{ unit_amount: 2500, quantity: 2 }]))).toBe(5000);
  });

  it('checks the maximum, a positive total and the minimum charge', () => {
    expect(totalProblem(BigInt(MAX_AMOUNT), 'usd')).toBeNull();
    expect(totalProblem(BigInt(MAX_AMOUNT) + 1n, 'usd')).toMatch(/over/);
    expect(totalProblem(0n, 'usd')).toMatch(/more than 0/);
    expect(totalProblem(49n, 'usd')).toMatch(/minimum charge in USD, 50 \(\$0\.50\)/);
    expect(totalProblem(50n, 'usd')).toBeNull();
    expect(totalProblem(30n, 'gbp')).toBeNull();
    expect(totalProblem(49n, 'jpy')).toMatch(/minimum/);
    expect(totalProblem(10n, 'kwd')).toBeNull();
  });
});

describe('formatAmount', () => {
  it('shows each currency with its own digits', () => {
    expect(formatAmount(2500, 'usd')).toBe('$25.00');
    expect(formatAmount(5000, 'jpy')).toBe('¥5,000');
    expect(formatAmount(1230, 'kwd')).toBe('KWD\u00a01.230');
    expect(formatAmount(10000, 'isk')).toBe('ISK\u00a0100');
    expect(formatAmount(-5, 'eur')).toBe('-€0.05');
  });

  it('keeps every digit of large amounts', () => {
    expect(formatAmount(Number.MAX_SAFE_INTEGER, 'usd')).toBe('$90,071,992,547,409.91');
  });
});
