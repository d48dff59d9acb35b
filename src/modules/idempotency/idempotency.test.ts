import { describe, expect, it } from 'vitest';
import { parseIdempotencyKey, requestFingerprint } from './idempotency.keys.js';

describe('Idempotency-Key header', () => {
  it('takes a bare token (Stripe style) or an sf-string (IETF draft style)', () => {
    expect(parseIdempotencyKey('abc-123')).toBe('abc-123');
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8-bc93-6894a57f9324"')).toBe(
      '8e03978e-40d5-43e8-bc93-6894a57f9324',
    );
    expect(parseIdempotencyKey('"with \\"quote\\""')).toBe('with "quote"');
  });

  it('refuses empty, over-long and non-ASCII keys', () => {
    expect(parseIdempotencyKey('')).toBeNull();
    expect(parseIdempotencyKey('""')).toBeNull();
    expect(parseIdempotencyKey('x'.repeat(256))).toBeNull();
    expect(parseIdempotencyKey('x'.repeat(255))).toHaveLength(255);
    expect(parseIdempotencyKey('clé')).toBeNull();
  });
});

describe('request fingerprint', () => {
  const bytes = (text: string) => Buffer.from(text);

  it('is taken over the bytes as sent: the same JSON spelled differently is another request', () => {
    expect(requestFingerprint('POST', '/v1/x', bytes('{"a":1}'))).toBe(
      requestFingerprint('POST', '/v1/x', bytes('{"a":1}')),
    );
    expect(requestFingerprint('POST', '/v1/x', bytes('{"a":1,"b":2}'))).not.toBe(
      requestFingerprint('POST', '/v1/x', bytes('{"b":2,"a":1}')),
    );
  });

  it('differs by body, path, query and method', () => {
    const base = requestFingerprint('POST', '/v1/x', bytes('{"a":1}'));
    expect(requestFingerprint('POST', '/v1/x', bytes('{"a":2}'))).not.toBe(base);
    expect(requestFingerprint('POST', '/v1/y', bytes('{"a":1}'))).not.toBe(base);
    expect(requestFingerprint('POST', '/v1/x?q=1', bytes('{"a":1}'))).not.toBe(base);
    expect(requestFingerprint('PUT', '/v1/x', bytes('{"a":1}'))).not.toBe(base);
    expect(requestFingerprint('POST', '/v1/x', null)).toBe(requestFingerprint('POST', '/v1/x', bytes('')));
  });
});
