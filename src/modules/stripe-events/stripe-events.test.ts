import { describe, expect, it } from 'vitest';
import { retryDelayMs } from '../../shared/backoff.js';
import { DEFAULT_RETRY } from './index.js';
import { parseWindow } from './stripe-events.cli.js';
import { StripeEventSchema } from './stripe-events.envelope.js';

describe('inbox retry backoff', () => {
  it('doubles up to the cap, with half of each window random', () => {
    const policy = { baseMs: 1000, capMs: 8000, jitter: 'equal' as const };
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, policy, () => 0))).toEqual([
      500, 1000, 2000, 4000, 4000,
    ]);
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, policy, () => 0.999999))).toEqual([
      999, 1999, 3999, 7999, 7999,
    ]);
    expect(() => retryDelayMs(0, policy)).toThrow(RangeError);
  });

  it('keeps retrying for at least a day before an event becomes a dead letter', () => {
    let shortest = 0;
    for (let n = 1; n < DEFAULT_RETRY.maxAttempts; n++) shortest += retryDelayMs(n, DEFAULT_RETRY, () => 0);
    expect(shortest).toBeGreaterThanOrEqual(24 * 60 * 60_000);
  });
});

describe('reconcile --since', () => {
  it('reads durations up to 30 days and refuses anything else', () => {
    expect(parseWindow('90s')).toBe(90_000);
    expect(parseWindow('24h')).toBe(86_400_000);
    expect(parseWindow('30d')).toBe(30 * 86_400_000);
    for (const bad of ['31d', '0h', '24', 'h', '1.5h', '-1h', '1w'])
      expect(() => parseWindow(bad), bad).toThrow();
  });
});

describe('the event envelope', () => {
  it('takes any object with the event envelope and refuses others', () => {
    const event = {
      id: 'evt_1',
      object: 'event',
      type: 'x.y',
      created: 1,
      livemode: false,
      data: { object: { object: 'x' } },
    };
    expect(StripeEventSchema.safeParse({ ...event, extra: 1 }).success).toBe(true);
    expect(StripeEventSchema.safeParse({ ...event, id: 'ch_1' }).success).toBe(false);
    expect(StripeEventSchema.safeParse({ ...event, object: 'charge' }).success).toBe(false);
    expect(StripeEventSchema.safeParse({ ...event, data: {} }).success).toBe(false);
  });
});
