import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  evaluateCommission,
  type FraudDecision,
  type FraudEvidence,
  isDisposableEmail,
  isHeld,
  normalizeEmail,
  payoutHold,
} from './referrals.fraud.js';
import {
  DEFAULT_FRAUD_CONFIG,
  FRAUD_RULES,
  type FraudConfig,
  type FraudRule,
  type FraudRuleMode,
  loadFraudConfig,
  modeVariable,
} from './referrals.fraud-config.js';

/** Every rule in one mode, with the default thresholds. */
const allIn = (mode: FraudRuleMode): FraudConfig =>
  loadFraudConfig(Object.fromEntries(FRAUD_RULES.map((r) => [modeVariable(r), mode])));
const ENFORCE = allIn('enforce');
const SHADOW = allIn('shadow');

const FINGERPRINT = 'Xt5EWLLDS7FJjR1c';
const IP_HASH = 'a3f1c9d2e8b7';

/** An order no rule fires on: a stranger paying $999.99 from their own customer, card and IP. */
function clean(): FraudEvidence {
  return {
    affiliate: {
      id: 'aff_1',
      email: 'Jane.Doe+shop@gmail.com',
      customerIds: ['cus_affiliate'],
      cardFingerprints: [FINGERPRINT],
      ipHashes: [IP_HASH],
    },
    order: {
      id: 'ord_1',
      amount: 99_999,
      currency: 'usd',
      buyerEmail: 'buyer@example.com',
      customerId: 'cus_buyer',
      cardFingerprint: 'Qq9ZZmmZZ1111abc',
      buyerIpHash: 'ffee00112233',
      riskLevel: 'normal',
    },
    velocity: { codeConversionsLastHour: 0, ipPurchasesLastDay: 0 },
  };
}

type Change = { order?: Partial<FraudEvidence['order']>; velocity?: Partial<FraudEvidence['velocity']> };
const withChange = (change: Change): FraudEvidence => {
  const base = clean();
  return {
    ...base,
    order: { ...base.order, ...change.order },
    velocity: { ...base.velocity, ...change.velocity },
  };
};

const rulesFired = (e: FraudEvidence, config: FraudConfig = ENFORCE) =>
  evaluateCommission(e, config).map((d) => d.rule);
const decisionFor = (rule: FraudRule, e: FraudEvidence, config: FraudConfig = ENFORCE) =>
  evaluateCommission(e, config).find((d) => d.rule === rule);

describe('normalizeEmail', () => {
  it('lower-cases, drops a +tag and reads Gmail without dots, googlemail.com as gmail.com', () => {
    expect(normalizeEmail(' Jane.Doe+shop@GMail.com ')).toBe('janedoe@gmail.com');
    expect(normalizeEmail('j.a.n.e.d.o.e@googlemail.com')).toBe('janedoe@gmail.com');
    expect(normalizeEmail('Jane.Doe+a+b@Example.COM')).toBe('jane.doe@example.com');
  });

  it('keeps the dots of a non-Gmail domain', () => {
    expect(normalizeEmail('jane.doe@example.com')).not.toBe(normalizeEmail('janedoe@example.com'));
  });

  it('returns text without an @ lower-cased, as nothing else can be read from it', () => {
    expect(normalizeEmail('Not An Email')).toBe('not an email');
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.emailAddress()), (email) => {
        const once = normalizeEmail(email);
        expect(normalizeEmail(once)).toBe(once);
      }),
    );
  });

  it('gives every dotted, cased and tagged form of a Gmail address the same normal form', () => {
    const local = fc.string({
      unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'),
      minLength: 1,
    });
    fc.assert(
      fc.property(
        local,
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.array(fc.boolean(), { maxLength: 40 }),
        fc.option(fc.string({ unit: 'grapheme-ascii' }).filter((t) => !t.includes('@'))),
        fc.constantFrom('gmail.com', 'googlemail.com', 'GMAIL.com', 'GoogleMail.COM'),
        (name, dots, upper, tag, domain) => {
          const variant = [...name]
            .map((ch, i) => (upper[i] ? ch.toUpperCase() : ch) + (dots[i] ? '.' : ''))
            .join('');
          const email = `${variant}${tag === null ? '' : `+${tag}`}@${domain}`;
          expect(normalizeEmail(email)).toBe(`${name}@gmail.com`);
        },
      ),
    );
  });

  it('tells apart addresses that differ by a character outside the dots, case and tag', () => {
    expect(normalizeEmail('jane.doe@gmail.com')).not.toBe(normalizeEmail('jane.dog@gmail.com'));
  });
});

describe('isDisposableEmail', () => {
  it("finds a domain of mailchecker's list, in any case", () => {
    expect(isDisposableEmail('someone@mailinator.com')).toBe(true);
    expect(isDisposableEmail('Someone@MAILINATOR.com.')).toBe(true);
  });

  it('counts a subdomain of a listed domain', () => {
    expect(isDisposableEmail('someone@inbox.mailinator.com')).toBe(true);
  });

  it('does not count an ordinary domain, or a listed name under an ordinary domain', () => {
    expect(isDisposableEmail('someone@gmail.com')).toBe(false);
    expect(isDisposableEmail('someone@mailinator.example.com')).toBe(false);
    expect(isDisposableEmail('mailinator.com')).toBe(false);
    expect(isDisposableEmail('someone@')).toBe(false);
  });
});

describe('evaluateCommission', () => {
  it('fires no rule on an ordinary order, in any mode', () => {
    expect(rulesFired(clean(), ENFORCE)).toEqual([]);
    expect(rulesFired(clean(), SHADOW)).toEqual([]);
  });

  describe('self_referral', () => {
    it('fires on the affiliate email with other case, +tag and Gmail dots', () => {
      const d = decisionFor(
        'self_referral',
        withChange({ order: { buyerEmail: 'JANEDOE+x@googlemail.com' } }),
      );
      expect(d?.evidence).toMatchObject({ identical_as_written: false });
      expect(JSON.stringify(d)).not.toContain('janedoe');
    });

    it('does not fire on an email one character away, or on none', () => {
      expect(rulesFired(withChange({ order: { buyerEmail: 'jane.dog@gmail.com' } }))).toEqual([]);
      expect(rulesFired(withChange({ order: { buyerEmail: null } }))).toEqual([]);
    });
  });

  describe('same_customer', () => {
    it("fires on one of the affiliate's Stripe customers", () => {
      expect(
        decisionFor('same_customer', withChange({ order: { customerId: 'cus_affiliate' } }))?.evidence,
      ).toEqual(expect.objectContaining({ customer_id: 'cus_affiliate' }));
    });

    it('does not fire on another customer or none', () => {
      expect(rulesFired(withChange({ order: { customerId: 'cus_affiliatf' } }))).toEqual([]);
      expect(rulesFired(withChange({ order: { customerId: null } }))).toEqual([]);
    });
  });

  describe('affiliate_card', () => {
    it('fires on a fingerprint from the affiliate purchases, keeping only its last 4 characters', () => {
      const d = decisionFor('affiliate_card', withChange({ order: { cardFingerprint: FINGERPRINT } }));
      expect(d?.evidence).toMatchObject({ card_fingerprint_last4: 'jR1c' });
      expect(JSON.stringify(d)).not.toContain(FINGERPRINT);
    });

    it('does not fire on a fingerprint one character away, or a blank one', () => {
      expect(rulesFired(withChange({ order: { cardFingerprint: `${FINGERPRINT.slice(0, -1)}d` } }))).toEqual(
        [],
      );
      const blankOnBoth = { ...clean(), affiliate: { ...clean().affiliate, cardFingerprints: [''] } };
      expect(rulesFired({ ...blankOnBoth, order: { ...blankOnBoth.order, cardFingerprint: '' } })).toEqual(
        [],
      );
    });
  });

  describe('affiliate_ip', () => {
    it("fires on the hash of the affiliate's click or checkout IP, naming the hash", () => {
      expect(
        decisionFor('affiliate_ip', withChange({ order: { buyerIpHash: IP_HASH } }))?.evidence,
      ).toMatchObject({
        buyer_ip_hash: IP_HASH,
      });
    });

    it('does not fire on another hash or none', () => {
      expect(rulesFired(withChange({ order: { buyerIpHash: 'a3f1c9d2e8b8' } }))).toEqual([]);
      expect(rulesFired(withChange({ order: { buyerIpHash: null } }))).toEqual([]);
    });
  });

  describe('code_velocity (10 per hour, this one counted)', () => {
    it('fires on the 11th conversion of the hour', () => {
      expect(
        decisionFor('code_velocity', withChange({ velocity: { codeConversionsLastHour: 10 } }))?.evidence,
      ).toMatchObject({ conversions_in_hour: 11, max_per_hour: 10 });
    });

    it('does not fire on the 10th', () => {
      expect(rulesFired(withChange({ velocity: { codeConversionsLastHour: 9 } }))).toEqual([]);
    });
  });

  describe('ip_velocity (5 per day, this one counted)', () => {
    it('fires on the 6th purchase from one IP in a day', () => {
      expect(
        decisionFor('ip_velocity', withChange({ velocity: { ipPurchasesLastDay: 5 } }))?.evidence,
      ).toMatchObject({ purchases_in_day: 6, max_per_day: 5, buyer_ip_hash: 'ffee00112233' });
    });

    it('does not fire on the 5th, nor without a buyer IP', () => {
      expect(rulesFired(withChange({ velocity: { ipPurchasesLastDay: 4 } }))).toEqual([]);
      expect(
        rulesFired(withChange({ velocity: { ipPurchasesLastDay: 50 }, order: { buyerIpHash: null } })),
      ).toEqual([]);
    });
  });

  describe('radar_risk', () => {
    it('fires on elevated and highest', () => {
      expect(rulesFired(withChange({ order: { riskLevel: 'elevated' } }))).toEqual(['radar_risk']);
      expect(rulesFired(withChange({ order: { riskLevel: 'highest' } }))).toEqual(['radar_risk']);
    });

    it('does not fire on normal, not_assessed or none, nor on a level left out of the configuration', () => {
      for (const riskLevel of ['normal', 'not_assessed', null])
        expect(rulesFired(withChange({ order: { riskLevel } }))).toEqual([]);
      const highestOnly = loadFraudConfig({ FRAUD_RADAR_LEVELS: 'highest' });
      expect(rulesFired(withChange({ order: { riskLevel: 'elevated' } }), highestOnly)).toEqual([]);
    });
  });

  describe('manual_review_amount (inclusive: from $1,000.00)', () => {
    it('fires at exactly the review amount and above', () => {
      const d = decisionFor('manual_review_amount', withChange({ order: { amount: 100_000 } }));
      expect(d?.evidence).toMatchObject({
        amount: 100_000,
        review_from: 100_000,
        review_from_shown: '$1,000.00',
      });
      expect(rulesFired(withChange({ order: { amount: 5_000_000 } }))).toEqual(['manual_review_amount']);
    });

    it('does not fire one minor unit below', () => {
      expect(rulesFired(withChange({ order: { amount: 99_999 } }))).toEqual([]);
    });

    it('reviews a currency without a review amount whatever the amount, saying so', () => {
      const d = decisionFor('manual_review_amount', withChange({ order: { amount: 100, currency: 'sek' } }));
      expect(d?.evidence).toMatchObject({
        review_from: null,
        currency: 'sek',
        amount_shown: expect.any(String),
      });
      const withSek = loadFraudConfig({ FRAUD_MANUAL_REVIEW_AMOUNTS: 'sek:1000000' });
      expect(rulesFired(withChange({ order: { amount: 100, currency: 'SEK' } }), withSek)).toEqual([]);
    });
  });

  describe('disposable_email', () => {
    it('fires on a disposable domain or a subdomain of one, naming the listed domain', () => {
      const d = decisionFor('disposable_email', withChange({ order: { buyerEmail: 'x@in.mailinator.com' } }));
      expect(d?.evidence).toMatchObject({
        email_domain: 'in.mailinator.com',
        listed_domain: 'mailinator.com',
      });
    });

    it('does not fire on an ordinary domain that contains a listed name', () => {
      expect(rulesFired(withChange({ order: { buyerEmail: 'x@mailinator.example.com' } }))).toEqual([]);
    });
  });

  it('carries each rule its own mode, and an enforce decision holds where shadow ones only flag', () => {
    const e = withChange({ order: { riskLevel: 'highest' }, velocity: { codeConversionsLastHour: 10 } });
    // Defaults: radar_risk enforces, code_velocity watches.
    const decisions = evaluateCommission(e, DEFAULT_FRAUD_CONFIG);
    expect(decisions.map((d) => [d.rule, d.mode])).toEqual([
      ['code_velocity', 'shadow'],
      ['radar_risk', 'enforce'],
    ]);
    expect(isHeld(decisions)).toBe(true);
    expect(isHeld(evaluateCommission(e, SHADOW))).toBe(false);
    expect(evaluateCommission(e, SHADOW).map((d) => d.rule)).toEqual(['code_velocity', 'radar_risk']);
  });

  it('never fires a rule that is off, even when every rule would fire', () => {
    const e = everything();
    expect(rulesFired(e, ENFORCE)).toEqual(FRAUD_RULES.filter((r) => r !== 'refund_rate'));
    expect(rulesFired(e, allIn('off'))).toEqual([]);
    const selfOff = loadFraudConfig({ FRAUD_SELF_REFERRAL: 'off' });
    expect(rulesFired(e, selfOff)).not.toContain('self_referral');
  });

  it('writes evidence that names the order and holds neither a whole fingerprint nor an email', () => {
    const decisions: FraudDecision[] = evaluateCommission(everything(), ENFORCE);
    for (const d of decisions) expect(d.evidence.order_id).toBe('ord_1');
    const text = JSON.stringify(decisions);
    expect(text).not.toContain(FINGERPRINT);
    expect(text).not.toMatch(/jane|doe/i);
  });
});

/** One order that trips every commission rule at once. */
function everything(): FraudEvidence {
  const e = withChange({
    order: {
      amount: 100_000,
      buyerEmail: 'jane.doe@mailinator.com',
      customerId: 'cus_affiliate',
      cardFingerprint: FINGERPRINT,
      buyerIpHash: IP_HASH,
      riskLevel: 'elevated',
    },
    velocity: { codeConversionsLastHour: 10, ipPurchasesLastDay: 5 },
  });
  return { ...e, affiliate: { ...e.affiliate, email: 'Jane.Doe+shop@mailinator.com' } };
}

describe('payoutHold (refund rate above 0.3, from 10 referred orders)', () => {
  it('holds when the rate is above the threshold', () => {
    expect(payoutHold({ referredOrders: 10, refundedOrders: 4 }, ENFORCE)).toEqual({
      rule: 'refund_rate',
      mode: 'enforce',
      evidence: {
        referred_orders: 10,
        refunded_orders: 4,
        refund_rate_bp: 4000,
        max_rate_bp: 3000,
        min_referred_orders: 10,
      },
    });
  });

  it('pays at exactly the threshold, and below the minimum number of orders whatever the rate', () => {
    expect(payoutHold({ referredOrders: 10, refundedOrders: 3 }, ENFORCE)).toBeNull();
    expect(payoutHold({ referredOrders: 9, refundedOrders: 9 }, ENFORCE)).toBeNull();
    expect(payoutHold({ referredOrders: 0, refundedOrders: 0 }, ENFORCE)).toBeNull();
  });

  it('carries its mode: shadow flags without holding, off never fires', () => {
    const shadow = payoutHold({ referredOrders: 20, refundedOrders: 20 }, SHADOW);
    expect(shadow?.mode).toBe('shadow');
    expect(isHeld(shadow ? [shadow] : [])).toBe(false);
    expect(payoutHold({ referredOrders: 20, refundedOrders: 20 }, allIn('off'))).toBeNull();
  });
});
