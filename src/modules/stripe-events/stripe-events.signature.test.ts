import { createHmac } from 'node:crypto';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { verifyStripeSignature } from './stripe-events.signature.js';

const stripe = new Stripe('sk_test_unit');
const SECRET = 'whsec_unit_test_secret';
const OTHER = 'whsec_other_secret';
const NOW = 1_800_000_000;
const body = Buffer.from('{"id":"evt_1","object":"event"}');
const sign = (payload: Buffer, secret = SECRET, timestamp = NOW) =>
  stripe.webhooks.generateTestHeaderString({ payload: payload.toString('utf8'), secret, timestamp });
const verify = (payload: Buffer, header: string | undefined, secrets = [SECRET], now = NOW) =>
  verifyStripeSignature(payload, header, secrets, 300, now);

describe('Stripe signature verification', () => {
  it('accepts what the Stripe SDK signs, and what the SDK itself accepts', () => {
    const header = sign(body);
    expect(verify(body, header)).toEqual({ ok: true, timestamp: NOW });
    expect(() =>
      stripe.webhooks.constructEvent(body, header, SECRET, 300, undefined, NOW * 1000),
    ).not.toThrow();
  });

  it('names each way a header can fail', () => {
    expect(verify(body, undefined)).toEqual({ ok: false, reason: 'missing_header' });
    expect(verify(body, '  ')).toEqual({ ok: false, reason: 'missing_header' });
    expect(verify(body, 'nonsense')).toEqual({ ok: false, reason: 'malformed_header' });
    expect(verify(body, `t=soon,v1=${'a'.repeat(64)}`)).toEqual({ ok: false, reason: 'malformed_header' });
    expect(verify(body, `v1=${'a'.repeat(64)}`)).toEqual({ ok: false, reason: 'malformed_header' });
    expect(verify(body, `t=1,t=2,v1=${'a'.repeat(64)}`)).toEqual({ ok: false, reason: 'malformed_header' });
    expect(verify(body, sign(body).replace('v1=', 'v0='))).toEqual({ ok: false, reason: 'no_v1_signature' });
    expect(verify(body, `t=${NOW},v1=zz`)).toEqual({ ok: false, reason: 'no_v1_signature' });
  });

  it('refuses an empty body, another secret, a changed byte and a stale or future timestamp', () => {
    expect(verify(Buffer.alloc(0), sign(body))).toEqual({ ok: false, reason: 'empty_body' });
    expect(verify(body, sign(body, OTHER))).toEqual({ ok: false, reason: 'no_matching_signature' });
    const changed = Buffer.from(body);
    changed[5] = changed[5]! ^ 1;
    expect(verify(changed, sign(body))).toEqual({ ok: false, reason: 'no_matching_signature' });
    expect(verify(body, sign(body, SECRET, NOW - 301))).toEqual({
      ok: false,
      reason: 'timestamp_outside_tolerance',
    });
    expect(verify(body, sign(body, SECRET, NOW + 301))).toEqual({
      ok: false,
      reason: 'timestamp_outside_tolerance',
    });
    expect(verify(body, sign(body, SECRET, NOW - 300)).ok).toBe(true);
  });

  it('hashes the exact bytes, not their UTF-8 reading', () => {
    // Two invalid UTF-8 sequences decode to the same replacement character; only one of them was signed.
    const signed = Buffer.from([0x7b, 0xff, 0x7d]);
    const other = Buffer.from([0x7b, 0xfe, 0x7d]);
    expect(signed.toString('utf8')).toBe(other.toString('utf8'));
    const v1 = createHmac('sha256', SECRET).update(`${NOW}.`).update(signed).digest('hex');
    expect(verify(signed, `t=${NOW},v1=${v1}`).ok).toBe(true);
    expect(verify(other, `t=${NOW},v1=${v1}`)).toEqual({ ok: false, reason: 'no_matching_signature' });
  });

  it('accepts any of several v1 signatures, and any configured secret during a rotation', () => {
    const good = sign(body).split(',v1=')[1]!;
    const header = `t=${NOW},v1=${'0'.repeat(64)},v1=${good},v0=${'1'.repeat(64)}`;
    expect(verify(body, header).ok).toBe(true);
    expect(verify(body, sign(body, OTHER), [SECRET, OTHER]).ok).toBe(true);
    expect(verify(body, sign(body, SECRET), [SECRET, OTHER]).ok).toBe(true);
  });

  it('refuses a tolerance of 0, which would accept a captured request forever', () => {
    expect(() => verifyStripeSignature(body, sign(body), [SECRET], 0, NOW)).toThrow(RangeError);
  });
});
