import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FRAUD_CONFIG,
  FRAUD_ENV_VARIABLES,
  FRAUD_RULES,
  FRAUD_SCHEMA_VARIABLES,
  FraudConfigError,
  loadFraudConfig,
  modeVariable,
} from './referrals.fraud-config.js';

/** The problems loadFraudConfig names for `env`, or [] when it accepts it. */
function problemsOf(env: NodeJS.ProcessEnv): string[] {
  try {
    loadFraudConfig(env);
    return [];
  } catch (err) {
    if (!(err instanceof FraudConfigError)) throw err;
    return err.problems;
  }
}

describe('fraud configuration', () => {
  it('defaults to enforce, with the IP and velocity rules in shadow, and the documented thresholds', () => {
    expect(DEFAULT_FRAUD_CONFIG).toEqual({
      self_referral: { mode: 'enforce' },
      same_customer: { mode: 'enforce' },
      affiliate_card: { mode: 'enforce' },
      affiliate_ip: { mode: 'shadow' },
      code_velocity: { mode: 'shadow', maxPerHour: 10 },
      ip_velocity: { mode: 'shadow', maxPerDay: 5 },
      radar_risk: { mode: 'enforce', levels: ['elevated', 'highest'] },
      manual_review_amount: {
        mode: 'enforce',
        reviewFrom: {
          usd: 100_000,
          eur: 100_000,
          gbp: 100_000,
          cad: 135_000,
          aud: 150_000,
          chf: 90_000,
          jpy: 150_000,
          kwd: 300_000,
        },
      },
      disposable_email: { mode: 'enforce' },
      refund_rate: { mode: 'enforce', maxRate: 0.3, minReferredOrders: 10 },
    });
    expect(Object.isFrozen(DEFAULT_FRAUD_CONFIG.manual_review_amount.reviewFrom)).toBe(true);
  });

  it('reads blank variables as unset', () => {
    const blank = Object.fromEntries(FRAUD_ENV_VARIABLES.map((v) => [v.name, ' ']));
    expect(loadFraudConfig(blank)).toEqual(DEFAULT_FRAUD_CONFIG);
  });

  it('lists every variable it reads, once, with a default that parses and a one-line meaning', () => {
    const names = FRAUD_ENV_VARIABLES.map((v) => v.name);
    expect([...names].sort()).toEqual([...FRAUD_SCHEMA_VARIABLES].sort());
    expect(new Set(names).size).toBe(names.length);
    for (const rule of FRAUD_RULES) expect(names).toContain(modeVariable(rule));
    for (const v of FRAUD_ENV_VARIABLES) {
      expect(v.meaning, v.name).not.toMatch(/\n/);
      expect(loadFraudConfig({ [v.name]: v.default })).toEqual(DEFAULT_FRAUD_CONFIG);
    }
  });

  it('sets each rule mode from its own variable, in any case', () => {
    expect(modeVariable('manual_review_amount')).toBe('FRAUD_MANUAL_REVIEW_AMOUNT');
    const config = loadFraudConfig({ FRAUD_AFFILIATE_IP: ' Enforce ', FRAUD_SELF_REFERRAL: 'off' });
    expect(config.affiliate_ip.mode).toBe('enforce');
    expect(config.self_referral.mode).toBe('off');
    expect(config.same_customer.mode).toBe('enforce');
  });

  it('reads thresholds, review amounts per currency and Radar levels', () => {
    const config = loadFraudConfig({
      FRAUD_CODE_VELOCITY_PER_HOUR: '25',
      FRAUD_IP_VELOCITY_PER_DAY: '3',
      FRAUD_RADAR_LEVELS: 'highest',
      FRAUD_MANUAL_REVIEW_AMOUNTS: 'USD:50000, jpy:150000, kwd:300000',
      FRAUD_REFUND_RATE_MAX: '0.25',
      FRAUD_REFUND_RATE_MIN_ORDERS: '20',
    });
    expect(config.code_velocity.maxPerHour).toBe(25);
    expect(config.ip_velocity.maxPerDay).toBe(3);
    expect(config.radar_risk.levels).toEqual(['highest']);
    // The list replaces the defaults: eur and gbp are no longer listed, so they are always reviewed.
    expect(config.manual_review_amount.reviewFrom).toEqual({ usd: 50_000, jpy: 150_000, kwd: 300_000 });
    expect(config.refund_rate).toEqual({ mode: 'enforce', maxRate: 0.25, minReferredOrders: 20 });
  });

  it('names every wrong variable at once', () => {
    expect(
      problemsOf({
        FRAUD_SELF_REFERRAL: 'enforced',
        FRAUD_CODE_VELOCITY_PER_HOUR: '1.5',
        FRAUD_IP_VELOCITY_PER_DAY: '0',
        FRAUD_RADAR_LEVELS: 'normal,highest',
        FRAUD_REFUND_RATE_MAX: '1',
        FRAUD_REFUND_RATE_MIN_ORDERS: 'ten',
      }),
    ).toEqual([
      'FRAUD_SELF_REFERRAL must be enforce, shadow or off',
      'FRAUD_CODE_VELOCITY_PER_HOUR must be a whole number',
      'FRAUD_IP_VELOCITY_PER_DAY must be at least 1',
      'FRAUD_RADAR_LEVELS must list one or more of elevated, highest (not: normal); to disable the rule set FRAUD_RADAR_RISK=off',
      'FRAUD_REFUND_RATE_MAX must be below 1 (a rate of 1 can never be exceeded)',
      'FRAUD_REFUND_RATE_MIN_ORDERS must be a whole number',
    ]);
  });

  it('checks review amounts against the currency table', () => {
    const problems = problemsOf({
      FRAUD_MANUAL_REVIEW_AMOUNTS: 'usd:100000,usd:5,xyz:3,kwd:1005,jpy,eur:0,gbp:12.5,dollars:1',
    });
    expect(problems).toEqual([
      'FRAUD_MANUAL_REVIEW_AMOUNTS usd is listed twice',
      'FRAUD_MANUAL_REVIEW_AMOUNTS xyz: "xyz" is not a currency Stripe charges in',
      expect.stringMatching(/^FRAUD_MANUAL_REVIEW_AMOUNTS kwd: KWD is a three-decimal currency .* use 1010$/),
      'FRAUD_MANUAL_REVIEW_AMOUNTS "jpy" must be currency:amount, e.g. usd:100000',
      'FRAUD_MANUAL_REVIEW_AMOUNTS eur: must be more than 0 (every order would be reviewed)',
      expect.stringMatching(/^FRAUD_MANUAL_REVIEW_AMOUNTS gbp: must be an integer amount/),
      expect.stringMatching(/^FRAUD_MANUAL_REVIEW_AMOUNTS dollars: must be a three-letter ISO 4217/),
    ]);
    expect(problemsOf({ FRAUD_MANUAL_REVIEW_AMOUNTS: ',' })).toEqual([
      'FRAUD_MANUAL_REVIEW_AMOUNTS must list at least one currency:amount',
    ]);
  });

  it('throws one error whose message names the variables', () => {
    expect(() => loadFraudConfig({ FRAUD_REFUND_RATE: 'maybe', FRAUD_IP_VELOCITY_PER_DAY: '-1' })).toThrow(
      /^invalid fraud configuration: FRAUD_REFUND_RATE must be .*; FRAUD_IP_VELOCITY_PER_DAY must be at least 1$/,
    );
  });
});
