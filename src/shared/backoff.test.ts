import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NOTIFICATION_RETRY, retryDelayMs } from './backoff.js';

const policy = { baseMs: 1_000, capMs: 60_000 };
const highest = () => 1 - Number.EPSILON;

describe('retryDelayMs with full jitter', () => {
  it('doubles the window with each failed attempt until the cap', () => {
    const windows = [1, 2, 3, 4, 5, 6, 7, 8].map((attempt) => retryDelayMs(attempt, policy, highest));
    expect(windows).toEqual([999, 1_999, 3_999, 7_999, 15_999, 31_999, 59_999, 59_999]);
  });

  it('draws uniformly from the whole window (full jitter), down to no delay at all', () => {
    expect(retryDelayMs(3, policy, () => 0)).toBe(0);
    expect(retryDelayMs(3, policy, () => 0.5)).toBe(2_000);
    expect(retryDelayMs(3, policy, () => 0.25)).toBe(1_000);
  });

  it('stays a finite number under the cap after any number of attempts', () => {
    expect(retryDelayMs(5_000, policy, highest)).toBe(59_999);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempt, r) => {
          const delay = retryDelayMs(attempt, NOTIFICATION_RETRY, () => r);
          return Number.isInteger(delay) && delay >= 0 && delay < NOTIFICATION_RETRY.capMs;
        },
      ),
    );
  });

  it('refuses attempts that are not positive integers', () => {
    for (const attempt of [0, -1, 1.5, Number.NaN]) {
      expect(() => retryDelayMs(attempt, policy)).toThrow(RangeError);
    }
  });
});
