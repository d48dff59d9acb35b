import { z } from 'zod';
import { amountProblem, currencyProblem } from '../../shared/money.js';

/**
 * Configuration of the fraud guards of DESIGN §6: one mode per rule and the thresholds of the rules that
 * have one, read from the environment once. `enforce` puts the commission (or the payout) on hold for an
 * admin; `shadow` only records the decision, so a rule can be watched on real traffic before it costs an
 * admin's time; `off` does not evaluate the rule at all.
 */

export const FRAUD_RULES = [
  'self_referral',
  'same_customer',
  'affiliate_card',
  'affiliate_ip',
  'code_velocity',
  'ip_velocity',
  'radar_risk',
  'manual_review_amount',
  'disposable_email',
  'refund_rate',
] as const;
export type FraudRule = (typeof FRAUD_RULES)[number];

export const FRAUD_MODES = ['enforce', 'shadow', 'off'] as const;
/** The mode a decision is recorded with; `off` never produces one. */
export type FraudMode = 'shadow' | 'enforce';
export type FraudRuleMode = (typeof FRAUD_MODES)[number];

/** Stripe Radar's `risk_level` values that can mean fraud; `normal`, `not_assessed` and `unknown` never do. */
export const RADAR_RISK_LEVELS = ['elevated', 'highest'] as const;
export type RadarRiskLevel = (typeof RADAR_RISK_LEVELS)[number];

interface RuleSetting {
  readonly mode: FraudRuleMode;
}

export interface FraudConfig {
  readonly self_referral: RuleSetting;
  readonly same_customer: RuleSetting;
  readonly affiliate_card: RuleSetting;
  readonly affiliate_ip: RuleSetting;
  /** Conversions allowed per code in any hour, this one counted: the next one over fires. */
  readonly code_velocity: RuleSetting & { readonly maxPerHour: number };
  /** Purchases allowed per buyer IP in any 24 h, this one counted: the next one over fires. */
  readonly ip_velocity: RuleSetting & { readonly maxPerDay: number };
  readonly radar_risk: RuleSetting & { readonly levels: readonly RadarRiskLevel[] };
  /**
   * Lower-case currency → the smallest amount, in minor units, that is reviewed (inclusive: an order of
   * exactly this amount fires). A currency that is not listed is always reviewed; see REVIEW_AMOUNTS below.
   */
  readonly manual_review_amount: RuleSetting & { readonly reviewFrom: Readonly<Record<string, number>> };
  /** Fires when refunded / referred is above maxRate, once the affiliate has minReferredOrders. */
  readonly disposable_email: RuleSetting;
  readonly refund_rate: RuleSetting & { readonly maxRate: number; readonly minReferredOrders: number };
}

/** The variable that sets a rule's mode: `self_referral` → `FRAUD_SELF_REFERRAL`. */
export const modeVariable = (rule: FraudRule) => `FRAUD_${rule.toUpperCase()}`;

/**
 * Default modes. The rules that compare the buyer with the affiliate's own identity (email, Stripe customer,
 * card) rarely match by accident, and the judgements of Stripe Radar, an order size and a disposable mailbox
 * are what an admin would want to look at anyway, so they hold. An IP is shared by households, offices, mobile
 * carriers' NAT and the café where a friend recommends a shop, and a code posted by someone with an audience
 * converts in legitimate bursts: those start in shadow until their false-positive rate is known.
 */
const DEFAULT_MODES: Readonly<Record<FraudRule, FraudRuleMode>> = {
  self_referral: 'enforce',
  same_customer: 'enforce',
  affiliate_card: 'enforce',
  affiliate_ip: 'shadow',
  code_velocity: 'shadow',
  ip_velocity: 'shadow',
  radar_risk: 'enforce',
  manual_review_amount: 'enforce',
  disposable_email: 'enforce',
  refund_rate: 'enforce',
};

/**
 * Review amounts. Nothing is converted between currencies (DESIGN §2) and the service holds no exchange
 * rates, so each currency gets its own amount. A currency not listed is reviewed whatever the amount:
 * borrowing the USD number would be wrong by orders of magnitude (100000 is $1,000 but ¥100,000 and
 * Rp1,000), and letting it pass would make an unconfigured currency the way around the rule. The defaults
 * are about $1,000 in the currencies most shops sell in (¥150,000, 300 KWD, …); operators selling in others
 * list them.
 */
const REVIEW_AMOUNTS =
  'usd:100000,eur:100000,gbp:100000,cad:135000,aud:150000,chf:90000,jpy:150000,kwd:300000';

/** Every variable read here, with its default as .env.example would write it and what it means. */
export const FRAUD_ENV_VARIABLES = [
  ...FRAUD_RULES.map((rule) => ({
    name: modeVariable(rule),
    default: DEFAULT_MODES[rule] as string,
    meaning: `mode of the ${rule} fraud rule: enforce (hold), shadow (flag only) or off`,
  })),
  {
    name: 'FRAUD_CODE_VELOCITY_PER_HOUR',
    default: '10',
    meaning: 'conversions allowed per referral code in any hour; the next one fires code_velocity',
  },
  {
    name: 'FRAUD_IP_VELOCITY_PER_DAY',
    default: '5',
    meaning: 'purchases allowed per buyer IP in any 24 hours; the next one fires ip_velocity',
  },
  {
    name: 'FRAUD_RADAR_LEVELS',
    default: RADAR_RISK_LEVELS.join(','),
    meaning: 'Stripe Radar risk levels that fire radar_risk, comma-separated: elevated, highest',
  },
  {
    name: 'FRAUD_MANUAL_REVIEW_AMOUNTS',
    default: REVIEW_AMOUNTS,
    meaning: 'currency:minor units from which an order is reviewed; unlisted currencies are always reviewed',
  },
  {
    name: 'FRAUD_REFUND_RATE_MAX',
    default: '0.3',
    meaning: "refunded share of an affiliate's referred orders above which its payouts are held (0 to <1)",
  },
  {
    name: 'FRAUD_REFUND_RATE_MIN_ORDERS',
    default: '10',
    meaning: 'referred orders an affiliate needs before refund_rate can fire, so one refund is not 100%',
  },
] as const satisfies ReadonlyArray<{ name: string; default: string; meaning: string }>;

/** Unset and blank read the same, as in src/config.ts: a `FRAUD_X=` line in .env.example means the default. */
const blank = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v);
/** Values are case-insensitive (`Enforce`, `USD:100000`): nothing here is a secret or an identifier. */
const clean = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v), schema);

const modeSchema = clean(z.enum(FRAUD_MODES, { error: 'must be enforce, shadow or off' }));
const countSchema = clean(
  z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .positive('must be at least 1'),
);
const rateSchema = clean(
  z.coerce
    .number({ error: 'must be a number' })
    .min(0, 'must be at least 0')
    .lt(1, 'must be below 1 (a rate of 1 can never be exceeded)'),
);

const radarLevelsSchema = clean(
  z.string().transform((raw, ctx): RadarRiskLevel[] => {
    const levels = [...new Set(raw.split(',').map((l) => l.trim()))].filter(Boolean);
    const wrong = levels.filter((l) => !(RADAR_RISK_LEVELS as readonly string[]).includes(l));
    if (levels.length === 0 || wrong.length > 0) {
      ctx.addIssue({
        code: 'custom',
        message:
          `must list one or more of ${RADAR_RISK_LEVELS.join(', ')}` +
          (wrong.length ? ` (not: ${wrong.join(', ')})` : '') +
          '; to disable the rule set FRAUD_RADAR_RISK=off',
      });
      return z.NEVER;
    }
    return levels as RadarRiskLevel[];
  }),
);

/** One `currency:amount` pair, or what is wrong with it. Amounts follow the currency table's own rules. */
function parseReviewAmount(pair: string): { currency: string; amount: number } | string {
  const m = /^([^:\s]+)\s*:\s*(\S+)$/.exec(pair);
  if (!m) return `"${pair}" must be currency:amount, e.g. usd:100000`;
  const [, currency = '', amountText = ''] = m;
  const badCurrency = currencyProblem(currency);
  if (badCurrency) return `${currency}: ${badCurrency}`;
  const amount = /^\d+$/.test(amountText) ? Number(amountText) : amountText;
  const badAmount = amountProblem(amount, currency);
  if (badAmount) return `${currency}: ${badAmount}`;
  if (amount === 0) return `${currency}: must be more than 0 (every order would be reviewed)`;
  return { currency, amount: amount as number };
}

const reviewAmountsSchema = clean(
  z.string().transform((raw, ctx): Record<string, number> => {
    const pairs = raw
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const amounts: Record<string, number> = {};
    const problems = pairs.length === 0 ? ['must list at least one currency:amount'] : [];
    for (const parsed of pairs.map(parseReviewAmount)) {
      if (typeof parsed === 'string') problems.push(parsed);
      else if (Object.hasOwn(amounts, parsed.currency)) problems.push(`${parsed.currency} is listed twice`);
      else amounts[parsed.currency] = parsed.amount;
    }
    for (const message of problems) ctx.addIssue({ code: 'custom', message });
    return problems.length > 0 ? z.NEVER : amounts;
  }),
);

const EnvSchema = z.object({
  ...Object.fromEntries(FRAUD_RULES.map((rule) => [modeVariable(rule), modeSchema])),
  FRAUD_CODE_VELOCITY_PER_HOUR: countSchema,
  FRAUD_IP_VELOCITY_PER_DAY: countSchema,
  FRAUD_RADAR_LEVELS: radarLevelsSchema,
  FRAUD_MANUAL_REVIEW_AMOUNTS: reviewAmountsSchema,
  FRAUD_REFUND_RATE_MAX: rateSchema,
  FRAUD_REFUND_RATE_MIN_ORDERS: countSchema,
});

/** The names the schema reads, for the test that holds FRAUD_ENV_VARIABLES to them. */
export const FRAUD_SCHEMA_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

export class FraudConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid fraud configuration: ${problems.join('; ')}`);
    this.name = 'FraudConfigError';
  }
}

/**
 * Reads the FRAUD_* variables (unset or blank: the default). Throws FraudConfigError naming every wrong
 * variable at once, so a deploy is fixed in one round rather than one variable at a time.
 */
export function loadFraudConfig(env: NodeJS.ProcessEnv): FraudConfig {
  // The defaults go through the same parser as the environment, so a default that breaks a rule fails here.
  const withDefaults = Object.fromEntries(
    FRAUD_ENV_VARIABLES.map((v) => [v.name, blank(env[v.name]) ?? v.default]),
  );
  const parsed = EnvSchema.safeParse(withDefaults);
  if (!parsed.success) {
    throw new FraudConfigError(parsed.error.issues.map((i) => `${i.path.join('.')} ${i.message}`));
  }
  const e = parsed.data as Record<string, unknown>;
  const mode = (rule: FraudRule) => ({ mode: e[modeVariable(rule)] as FraudRuleMode });
  return deepFreeze({
    self_referral: mode('self_referral'),
    same_customer: mode('same_customer'),
    affiliate_card: mode('affiliate_card'),
    affiliate_ip: mode('affiliate_ip'),
    code_velocity: { ...mode('code_velocity'), maxPerHour: e.FRAUD_CODE_VELOCITY_PER_HOUR as number },
    ip_velocity: { ...mode('ip_velocity'), maxPerDay: e.FRAUD_IP_VELOCITY_PER_DAY as number },
    radar_risk: { ...mode('radar_risk'), levels: e.FRAUD_RADAR_LEVELS as RadarRiskLevel[] },
    manual_review_amount: {
      ...mode('manual_review_amount'),
      reviewFrom: e.FRAUD_MANUAL_REVIEW_AMOUNTS as Record<string, number>,
    },
    disposable_email: mode('disposable_email'),
    refund_rate: {
      ...mode('refund_rate'),
      maxRate: e.FRAUD_REFUND_RATE_MAX as number,
      minReferredOrders: e.FRAUD_REFUND_RATE_MIN_ORDERS as number,
    },
  });
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

export const DEFAULT_FRAUD_CONFIG: FraudConfig = loadFraudConfig({});
