import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Random base62 text; rejection sampling keeps every character equally likely. */
export function randomToken(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/**
 * Ids shaped like Stripe's: a type prefix and 24 random characters. Checkout Session ids carry the
 * `test_` marker and a longer tail, as Stripe's test-mode sessions do.
 */
export function newId(prefix: string): string {
  if (prefix === 'cs') return `cs_test_${randomToken(58)}`;
  return `${prefix}_${randomToken(24)}`;
}

export function newWebhookSecret(): string {
  return `whsec_${randomToken(32)}`;
}
