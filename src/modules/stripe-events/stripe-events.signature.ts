import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Stripe's webhook signature (`Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]`): HMAC-SHA256, keyed
 * with the whole `whsec_…` secret, over `"<t>." + body`.
 *
 * Computed here over the exact bytes received rather than through `stripe.webhooks.constructEvent`: the SDK
 * decodes the body as UTF-8 text before hashing, so two different byte sequences that decode alike would
 * verify alike, and it checks one secret per call and reports failures only as message text. The SDK's
 * `generateTestHeaderString` is the oracle in the tests: everything it signs verifies here.
 */

export type SignatureFailure =
  | 'missing_header'
  | 'malformed_header'
  | 'no_v1_signature'
  | 'empty_body'
  | 'no_matching_signature'
  | 'timestamp_outside_tolerance';

export type SignatureCheck = { ok: true; timestamp: number } | { ok: false; reason: SignatureFailure };

// A v1 signature is a hex SHA-256 digest; anything else cannot match and is skipped like an unknown scheme.
const V1 = /^[0-9a-f]{64}$/;
const UNIX_SECONDS = /^\d{1,12}$/;

interface ParsedHeader {
  timestamp: number;
  v1: Buffer[];
}

function parseHeader(header: string): ParsedHeader | 'malformed_header' | 'no_v1_signature' {
  let timestamp: number | undefined;
  const v1: Buffer[] = [];
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq <= 0) return 'malformed_header';
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 't') {
      // Two timestamps would leave it open which one was signed.
      if (timestamp !== undefined || !UNIX_SECONDS.test(value)) return 'malformed_header';
      timestamp = Number(value);
    } else if (key === 'v1' && V1.test(value)) {
      v1.push(Buffer.from(value, 'hex'));
    }
    // Other schemes (v0 is Stripe's test-only one) are ignored, as Stripe asks integrations to do.
  }
  if (timestamp === undefined) return 'malformed_header';
  if (v1.length === 0) return 'no_v1_signature';
  return { timestamp, v1 };
}

/**
 * What can be judged of a delivery from its `Stripe-Signature` header alone: present, well formed, with a v1
 * signature and a timestamp within `toleranceSeconds` of `nowSeconds` either way (a timestamp far in the
 * future is as suspect as an old one, since Stripe signs at the moment it sends). Checked before the body is
 * even read, so a request that cannot verify costs nothing.
 */
export function checkSignatureHeader(
  header: string | undefined,
  toleranceSeconds: number,
  nowSeconds: number,
): { ok: true; header: ParsedHeader } | { ok: false; reason: SignatureFailure } {
  if (!(toleranceSeconds > 0))
    throw new RangeError('a webhook tolerance of 0 would accept a captured request forever');
  if (header === undefined || header.trim() === '') return { ok: false, reason: 'missing_header' };
  const parsed = parseHeader(header);
  if (typeof parsed === 'string') return { ok: false, reason: parsed };
  if (Math.abs(nowSeconds - parsed.timestamp) > toleranceSeconds) {
    return { ok: false, reason: 'timestamp_outside_tolerance' };
  }
  return { ok: true, header: parsed };
}

/** Accepts when the header passes `checkSignatureHeader` and any v1 signature matches any of `secrets`. */
export function verifyStripeSignature(
  payload: Buffer,
  header: string | undefined,
  secrets: readonly string[],
  toleranceSeconds: number,
  nowSeconds: number,
): SignatureCheck {
  const check = checkSignatureHeader(header, toleranceSeconds, nowSeconds);
  if (!check.ok) return check;
  const parsed = check.header;
  // Nothing was signed that could be an event; say so before hashing.
  if (payload.length === 0) return { ok: false, reason: 'empty_body' };
  const signedPrefix = Buffer.from(`${parsed.timestamp}.`, 'utf8');
  let matched = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(signedPrefix).update(payload).digest();
    // Every candidate is compared in constant time and none short-circuits, so timing says nothing about
    // which signature or secret came close.
    for (const candidate of parsed.v1) matched = timingSafeEqual(expected, candidate) || matched;
  }
  if (!matched) return { ok: false, reason: 'no_matching_signature' };
  return { ok: true, timestamp: parsed.timestamp };
}
