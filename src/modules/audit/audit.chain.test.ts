import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  assertAuditable,
  canonicalEntry,
  checkEntry,
  checkHead,
  entryHash,
  GENESIS_HASH,
  GENESIS_LINK,
  type HashedEntry,
  isStream,
} from './audit.chain.js';
import { entryId, parseEntryId } from './audit.read.js';

const first: HashedEntry = {
  stream: 'affiliate:aff_1',
  seq: 1,
  at: '2026-11-30T10:00:00.123Z',
  actor: 'stripe:evt_1',
  action: 'commission.accrued',
  entity_type: 'commission',
  entity_id: 'com_1',
  data: { net_amount: 500, amount: 500, currency: 'usd', nested: { z: 1, a: [true, null, 'x'] } },
  prev_hash: GENESIS_HASH,
};
const sealed = (e: HashedEntry) => ({ ...e, hash: entryHash(e) });

describe('an audit entry hash', () => {
  it('is SHA-256 of prev_hash followed by the RFC 8785 canonical JSON of the entry', () => {
    const canonical =
      '{"action":"commission.accrued","actor":"stripe:evt_1","at":"2026-11-30T10:00:00.123Z",' +
      '"data":{"amount":500,"currency":"usd","nested":{"a":[true,null,"x"],"z":1},"net_amount":500},' +
      '"entity_id":"com_1","entity_type":"commission",' +
      `"prev_hash":"${GENESIS_HASH}","seq":1,"stream":"affiliate:aff_1"}`;
    expect(canonicalEntry(first)).toBe(canonical);
    expect(entryHash(first)).toBe(
      createHash('sha256')
        .update(GENESIS_HASH + canonical)
        .digest('hex'),
    );
  });

  it('does not depend on the order keys come back in (jsonb reorders them)', () => {
    const reordered = {
      ...first,
      data: { nested: { a: [true, null, 'x'], z: 1 }, currency: 'usd', net_amount: 500, amount: 500 },
    };
    expect(entryHash(reordered)).toBe(entryHash(first));
    expect(entryHash({ ...first, data: { ...first.data, amount: 501 } })).not.toBe(entryHash(first));
  });
});

describe('audit data', () => {
  it('takes plain JSON with safe integers', () => {
    expect(() =>
      assertAuditable({ a: [1, -2, 'x', null, false, { b: Number.MAX_SAFE_INTEGER }] }),
    ).not.toThrow();
  });

  it('takes an undefined property as an absent one, in the hash as in the stored JSON', () => {
    expect(() => assertAuditable({ reason: undefined })).not.toThrow();
    expect(entryHash({ ...first, data: { ...first.data, reason: undefined } })).toBe(entryHash(first));
  });

  it.each([
    ['a fraction', { amount: 1.5 }, 'data.amount'],
    ['an unsafe integer', { amount: 2 ** 53 }, 'data.amount'],
    ['NaN', { list: [Number.NaN] }, 'data.list[0]'],
    ['a Date', { at: new Date(0) }, 'data.at'],
    ['undefined in an array', { list: [1, undefined] }, 'data.list[1]'],
    ['a bigint', { big: 1n }, 'data.big'],
    ['NUL in a string', { note: 'a\u0000b' }, 'data.note'],
    ['a lone surrogate in a key', { ['\ud800']: 1 }, 'data'],
  ])('refuses %s, naming where', (_what, data, path) => {
    expect(() => assertAuditable(data)).toThrow(new RegExp(`^${path.replace(/[[\].]/g, '\\$&')}: `));
  });
});

describe('streams and entry ids', () => {
  it('knows the system stream and affiliate streams, nothing else', () => {
    expect(isStream('system')).toBe(true);
    expect(isStream('affiliate:aff_9Zx')).toBe(true);
    expect(isStream('affiliate:')).toBe(false);
    expect(isStream('System')).toBe(false);
    expect(isStream('affiliate:aff 1')).toBe(false);
  });

  it('names an entry by its place in its chain, and reads that back', () => {
    expect(entryId('affiliate:aff_1', 12)).toBe('affiliate:aff_1/12');
    expect(parseEntryId('affiliate:aff_1/12')).toEqual({ stream: 'affiliate:aff_1', seq: 12 });
    expect(parseEntryId('system/1')).toEqual({ stream: 'system', seq: 1 });
    for (const bad of ['system', 'system/0', 'system/01', 'other/3', '/3', 'system/99999999999999999'])
      expect(parseEntryId(bad)).toBeNull();
  });
});

describe('checking a chain', () => {
  const one = sealed(first);
  const two = sealed({ ...first, seq: 2, prev_hash: one.hash, data: { amount: -100 } });
  const linkOf = (e: typeof one) => ({ seq: e.seq, hash: e.hash, prev_hash: e.prev_hash });

  it('passes an intact chain', () => {
    expect(checkEntry(GENESIS_LINK, one)).toBeNull();
    expect(checkEntry(linkOf(one), two)).toBeNull();
    expect(checkHead(one.stream, linkOf(two), { last_seq: 2, last_hash: two.hash })).toBeNull();
  });

  it('names each way a chain breaks', () => {
    const reason = (bad: ReturnType<typeof checkEntry>) => bad && [bad.seq, bad.reason];
    expect(reason(checkEntry(GENESIS_LINK, two))).toEqual([2, 'seq_gap']);
    expect(reason(checkEntry(linkOf(one), { ...two, data: { amount: -1 } }))).toEqual([2, 'hash_mismatch']);
    expect(reason(checkEntry(linkOf(one), sealed({ ...two, prev_hash: 'f'.repeat(64) })))).toEqual([
      2,
      'broken_link',
    ]);
    // A second entry after entry 1, at seq 3: entry 2 and it both claim entry 1 as their predecessor.
    const fork = sealed({ ...first, seq: 3, prev_hash: one.hash });
    expect(reason(checkEntry(linkOf(two), fork))).toEqual([3, 'fork']);
  });

  it("compares a stream's end with its head row", () => {
    const end = linkOf(two);
    expect(checkHead(two.stream, end, undefined)?.reason).toBe('head_mismatch');
    expect(checkHead(two.stream, end, { last_seq: 3, last_hash: 'a'.repeat(64) })).toMatchObject({
      seq: 3,
      reason: 'missing_entries',
    });
    expect(checkHead(two.stream, end, { last_seq: 1, last_hash: one.hash })?.reason).toBe('head_mismatch');
    expect(checkHead(two.stream, end, { last_seq: 2, last_hash: one.hash })?.reason).toBe('head_mismatch');
  });
});
