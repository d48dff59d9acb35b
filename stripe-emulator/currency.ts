// Stripe's lists of currencies whose amounts are not in hundredths
// (https://docs.stripe.com/currencies#zero-decimal and #three-decimal).
const ZERO_DECIMAL = new Set([
  'bif',
  'clp',
  'djf',
  'gnf',
  'jpy',
  'kmf',
  'krw',
  'mga',
  'pyg',
  'rwf',
  'ugx',
  'vnd',
  'vuv',
  'xaf',
  'xof',
  'xpf',
]);
const THREE_DECIMAL = new Set(['bhd', 'jod', 'kwd', 'omr', 'tnd']);

/** How many digits of an amount sit after the decimal point in `currency` (lower-case ISO code). */
export function minorUnitExponent(currency: string): number {
  const c = currency.toLowerCase();
  if (ZERO_DECIMAL.has(c)) return 0;
  if (THREE_DECIMAL.has(c)) return 3;
  return 2;
}

/** An integer amount in minor units, shown to a person: `formatAmount(1999, 'usd')` → `$19.99`. */
export function formatAmount(amount: number, currency: string): string {
  const exponent = minorUnitExponent(currency);
  const major = amount / 10 ** exponent;
  try {
    return new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: currency.toUpperCase(),
      minimumFractionDigits: exponent,
      maximumFractionDigits: exponent,
    }).format(major);
  } catch {
    return `${major.toFixed(exponent)} ${currency.toUpperCase()}`;
  }
}
