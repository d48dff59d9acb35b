/**
 * Money in integer minor units, and the one currency table (DESIGN §2). Every amount that enters the service
 * is checked here against Stripe's rules for its currency; nothing anywhere else divides by 100.
 *
 * Sources: Stripe's "Supported currencies" page (zero-decimal list, three-decimal rule, ISK special case,
 * minimum charge amounts) and its API reference for `amount` ("supports up to eight digits, e.g. 99999999
 * for a USD charge of $999,999.99"; larger amounts fail with `amount_too_large`).
 */

export interface CurrencyRule {
  /** Lower-case ISO 4217 code, as Stripe writes it. */
  code: string;
  /** Digits after the decimal point in API amounts: in a two-decimal currency 2500 means 25.00. */
  exponent: 0 | 2 | 3;
  /** API amounts must be a multiple of this: 10 for three-decimal currencies, 100 for ISK, else 1. */
  multipleOf: 1 | 10 | 100;
  /** Stripe's published minimum charge in this currency (minor units), where it publishes one. */
  minimumCharge: number | undefined;
}

/** Stripe's largest `amount` in any currency this table holds: eight digits of minor units. */
export const MAX_AMOUNT = 99_999_999;

const ZERO_DECIMAL = 'bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf';
/** Stripe accepts these with three decimals only when the last digit is 0, for its payment partners. */
const THREE_DECIMAL = 'bhd jod kwd omr tnd';
/**
 * Two-decimal presentment currencies Stripe supports for card payments. ISK is here on purpose: Stripe now
 * treats it as zero-decimal but, for backwards compatibility, charges it as two-decimal with amounts
 * divisible by 100, which is the form this service sends.
 */
const TWO_DECIMAL =
  'usd aed afn all amd aoa ars aud awg azn bam bbd bdt bgn bmd bnd bob brl bsd bwp byn bzd cad cdf chf ' +
  'cny cop crc cve czk dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gtq gyd hkd hnl htg huf idr ils ' +
  'inr isk jmd kes kgs khr kyd kzt lak lbp lkr lrd lsl mad mdl mkd mmk mnt mop mur mvr mwk mxn myr mzn ' +
  'nad ngn nio nok npr nzd pab pen pgk php pkr pln qar ron rsd sar sbd scr sek sgd shp sle sos srd szl ' +
  'thb tjs top try ttd twd tzs uah uyu uzs wst xcd yer zar zmw';

/**
 * Stripe's minimum charge amounts, in minor units, for the currencies its table names. They bind when the
 * currency is also the account's settlement currency; other pairs are converted and checked by Stripe.
 */
const MINIMUM_CHARGE: Record<string, number> = {
  usd: 50,
  aed: 200,
  aud: 50,
  bgn: 100,
  brl: 50,
  cad: 50,
  chf: 50,
  czk: 1500,
  dkk: 250,
  eur: 50,
  gbp: 30,
  hkd: 400,
  huf: 17500,
  inr: 50,
  jpy: 50,
  mxn: 1000,
  myr: 200,
  nok: 300,
  nzd: 50,
  pln: 200,
  ron: 200,
  sek: 300,
  sgd: 50,
  thb: 1000,
};

function buildTable(): ReadonlyMap<string, CurrencyRule> {
  const table = new Map<string, CurrencyRule>();
  const add = (codes: string, exponent: CurrencyRule['exponent'], multipleOf: CurrencyRule['multipleOf']) => {
    for (const code of codes.split(' ')) {
      table.set(code, { code, exponent, multipleOf, minimumCharge: MINIMUM_CHARGE[code] });
    }
  };
  add(TWO_DECIMAL, 2, 1);
  add(ZERO_DECIMAL, 0, 1);
  add(THREE_DECIMAL, 3, 10);
  table.set('isk', { code: 'isk', exponent: 2, multipleOf: 100, minimumCharge: undefined });
  return table;
}

export const CURRENCIES: ReadonlyMap<string, CurrencyRule> = buildTable();

/** The rule for `currency` (any case), or undefined when Stripe does not take it. */
export function currencyRule(currency: string): CurrencyRule | undefined {
  return CURRENCIES.get(currency.toLowerCase());
}

/** "2500 = 25 USD": how minor units map to what a person thinks in, for error messages that explain a rule. */
const example = (rule: CurrencyRule, majorUnits: number) =>
  `${majorUnits * 10 ** rule.exponent} = ${majorUnits} ${rule.code.toUpperCase()}`;

/**
 * Why `currency` cannot be used, or null when it can. The message names the rule so the caller can fix
 * the request without reading Stripe's documentation.
 */
export function currencyProblem(currency: string): string | null {
  if (!/^[A-Za-z]{3}$/.test(currency)) return 'must be a three-letter ISO 4217 currency code, e.g. "usd"';
  if (!currencyRule(currency)) return `"${currency}" is not a currency Stripe charges in`;
  return null;
}

/**
 * Why `amount` is not a valid amount in `currency`, or null when it is: an integer number of minor units,
 * not negative, within Stripe's maximum, and a multiple of what the currency's minor unit allows.
 */
export function amountProblem(amount: unknown, currency: string): string | null {
  const rule = currencyRule(currency);
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) {
    const unit = rule ? ` (${example(rule, 25)})` : '';
    return `must be an integer amount in the currency's minor unit${unit}; fractions are not allowed`;
  }
  if (amount < 0) return 'must not be negative';
  if (amount > MAX_AMOUNT)
    return `must be at most ${MAX_AMOUNT}, Stripe's largest amount (eight digits of minor units)`;
  if (!rule || amount % rule.multipleOf === 0) return null;
  if (rule.exponent === 3) {
    return (
      `${rule.code.toUpperCase()} is a three-decimal currency (${example(rule, 1)}) and Stripe requires the last ` +
      `digit to be 0: ${amount} is not allowed, use ${roundTo(amount, 10)}`
    );
  }
  return (
    `${rule.code.toUpperCase()} is charged as a two-decimal currency with amounts divisible by ${rule.multipleOf} ` +
    `(${example(rule, 100)}): ${amount} is not allowed, use ${roundTo(amount, rule.multipleOf)}`
  );
}

const roundTo = (amount: number, step: number) => Math.round(amount / step) * step;

/**
 * Why `total` cannot be charged in `currency`, or null when it can: within Stripe's maximum and at least its
 * minimum charge. Takes a BigInt so that a sum of products past 2^53 is judged exactly, not rounded.
 */
export function totalProblem(total: bigint, currency: string): string | null {
  const rule = currencyRule(currency);
  if (total > BigInt(MAX_AMOUNT)) {
    return `the total ${total} is over ${MAX_AMOUNT}, Stripe's largest amount (eight digits of minor units)`;
  }
  if (total <= 0n) return 'the total must be more than 0';
  if (rule?.minimumCharge !== undefined && total < BigInt(rule.minimumCharge)) {
    return (
      `the total ${total} is under Stripe's minimum charge in ${rule.code.toUpperCase()}, ` +
      `${rule.minimumCharge} (${formatAmount(rule.minimumCharge, rule.code)})`
    );
  }
  return null;
}

/**
 * Σ unit_amount × quantity in BigInt: each factor is a safe integer, but their product or sum may not be,
 * and a rounded total must never pass a limit check it should fail.
 */
export function lineItemsTotal(items: ReadonlyArray<{ unit_amount: number; quantity: number }>): bigint {
  let total = 0n;
  for (const item of items) total += BigInt(item.unit_amount) * BigInt(item.quantity);
  return total;
}

/** A BigInt amount as a number, refusing (never rounding) anything past 2^53. */
export function toSafeNumber(amount: bigint): number {
  const n = Number(amount);
  if (!Number.isSafeInteger(n)) throw new RangeError(`amount ${amount} is outside the safe integer range`);
  return n;
}

/**
 * An amount shown to a person: `formatAmount(2500, 'usd')` → "$25.00", `formatAmount(5000, 'jpy')` →
 * "¥5,000", `formatAmount(10000, 'isk')` → "ISK 100". The decimal is built from the integer as text, so no
 * float ever touches the digits.
 */
export function formatAmount(amount: number, currency: string): string {
  const rule = currencyRule(currency);
  const exponent = rule?.exponent ?? 2;
  const negative = amount < 0;
  const digits = BigInt(Math.abs(amount))
    .toString()
    .padStart(exponent + 1, '0');
  const decimal = exponent === 0 ? digits : `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
  const format = formatterOf(currency, exponent);
  const literal = `${negative ? '-' : ''}${decimal}`;
  return format
    ? format.format(literal as Intl.StringNumericLiteral)
    : `${literal} ${currency.toUpperCase()}`;
}

/**
 * One formatter per currency of the table, built once: a report formats millions of amounts. Null when Intl
 * has none for it.
 */
const formatters = new Map<string, Intl.NumberFormat | null>();

function formatterOf(currency: string, exponent: number): Intl.NumberFormat | null {
  const cached = formatters.get(currency);
  if (cached !== undefined) return cached;
  const code = currency.toUpperCase();
  let format: Intl.NumberFormat | null = null;
  try {
    // ISK is sent in hundredths but shown whole, as Intl's own digits for it (0) say; others show all digits.
    const shown = Math.min(
      new Intl.NumberFormat('en-US', { style: 'currency', currency: code }).resolvedOptions()
        .minimumFractionDigits ?? 2,
      exponent,
    );
    format = new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: code,
      minimumFractionDigits: shown,
      maximumFractionDigits: exponent,
    });
  } catch {
    // not a currency Intl knows: shown as digits and code
  }
  if (CURRENCIES.has(currency)) formatters.set(currency, format);
  return format;
}
