import { describe, expect, it } from 'vitest';
import { REDACTED, redactUrlCredentials, secretScrubber } from './redact.js';

describe('redactUrlCredentials', () => {
  it('replaces the userinfo of every URL in a text, whatever the scheme', () => {
    expect(
      redactUrlCredentials('pg postgres://app:pw@db:5432/x, redis rediss://:tok@cache, https://user@h/p'),
    ).toBe(`pg postgres://${REDACTED}@db:5432/x, redis rediss://${REDACTED}@cache, https://${REDACTED}@h/p`);
  });

  it('leaves URLs without credentials and e-mail addresses alone', () => {
    const text = 'https://orders.example/hook?x=1 for ops@shop.example';
    expect(redactUrlCredentials(text)).toBe(text);
  });
});

describe('secretScrubber', () => {
  const url = 'https://orders.example/hooks/abc123def?token=s3cret-token&v=1';
  const scrub = secretScrubber([url, 'whsec_c2VjcmV0a2V5']);

  it('hides a URL whole, its path and query, each long query value and a whsec_ key', () => {
    expect(scrub(`POST ${url} failed`)).toBe(`POST ${REDACTED} failed`);
    expect(scrub('Cannot POST /hooks/abc123def?token=s3cret-token&v=1')).toBe(`Cannot POST ${REDACTED}`);
    expect(scrub('unknown path /hooks/abc123def')).toBe(`unknown path ${REDACTED}`);
    expect(scrub('bad token s3cret-token')).toBe(`bad token ${REDACTED}`);
    expect(scrub('expected c2VjcmV0a2V5 or whsec_c2VjcmV0a2V5')).toBe(`expected ${REDACTED} or ${REDACTED}`);
  });

  it('keeps the host and short values, which are no secret and make the message useful', () => {
    expect(scrub('connect ECONNREFUSED orders.example:443 after 1 try')).toBe(
      'connect ECONNREFUSED orders.example:443 after 1 try',
    );
  });
});
