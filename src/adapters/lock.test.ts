import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { redisAvailable, TEST_REDIS_URL } from '../../test/helpers/services.js';
import type { Kv } from '../ports/kv.js';
import type { Lock } from '../ports/lock.js';
import { memoryKv, memoryLock } from './memory.js';
import { createRedisClient, redisKv, redisLock } from './redis.js';

/** One store seen through several handles, as separate service instances would see it. */
interface Backend {
  /** At least two Lock handles on the same store; holders A and B use different ones. */
  locks: Lock[];
  kv: Kv;
  /** Lets `ms` of store time pass: moves the clock in memory, sleeps for Redis. */
  advance(ms: number): Promise<void>;
}

// Real Redis expiry needs real sleeps, so the durations are short. Anything meant to expire lives SHORT and
// is checked after PAST; anything meant to survive lives LONG, so a slow CI box oversleeping by hundreds of
// milliseconds still cannot turn a pass into a failure.
const SHORT = 100;
const PAST = 200;
const LONG = 10_000;

function lockAndKvContract(name: string, makeBackend: () => Promise<Backend>, skip = false): void {
  describe.skipIf(skip)(`${name}: Lock`, () => {
    let lockA: Lock;
    let lockB: Lock;
    let backend: Backend;
    beforeEach(async () => {
      backend = await makeBackend();
      lockA = backend.locks[0]!;
      lockB = backend.locks[1]!;
    });

    it('admits one holder at a time and hands out unguessable tokens', async () => {
      const tokenA = await lockA.acquire('order:1', LONG);
      expect(tokenA).toMatch(/^[0-9a-f]{32}$/);
      expect(await lockB.acquire('order:1', LONG)).toBeNull();
      expect(await lockA.acquire('order:1', LONG)).toBeNull();
      expect(await lockB.acquire('order:2', LONG)).not.toBeNull();

      expect(await lockA.release('order:1', tokenA!)).toBe(true);
      const tokenB = await lockB.acquire('order:1', LONG);
      expect(tokenB).toMatch(/^[0-9a-f]{32}$/);
      expect(tokenB).not.toBe(tokenA);
    });

    it('gives exactly one of 50 concurrent acquire attempts the lock', async () => {
      const attempts = Array.from({ length: 50 }, (_, i) =>
        backend.locks[i % backend.locks.length]!.acquire('order:race', LONG),
      );
      const tokens = (await Promise.all(attempts)).filter((token) => token !== null);
      expect(tokens).toHaveLength(1);
    });

    it('removes nothing when released with a wrong token', async () => {
      const token = await lockA.acquire('order:1', LONG);
      expect(await lockB.release('order:1', 'not-the-token')).toBe(false);
      expect(await lockB.release('order:1', '')).toBe(false);
      expect(await lockB.acquire('order:1', LONG)).toBeNull();
      expect(await lockA.release('order:1', token!)).toBe(true);
      expect(await lockA.release('order:1', token!)).toBe(false);
    });

    it('admits a new holder after expiry, whose lock the old holder can neither release nor extend', async () => {
      const oldToken = await lockA.acquire('order:1', SHORT);
      expect(oldToken).not.toBeNull();
      await backend.advance(PAST);

      const newToken = await lockB.acquire('order:1', LONG);
      expect(newToken).not.toBeNull();
      expect(await lockA.release('order:1', oldToken!)).toBe(false);
      expect(await lockA.extend('order:1', oldToken!, LONG)).toBe(false);
      expect(await lockA.acquire('order:1', LONG)).toBeNull();
      expect(await lockB.release('order:1', newToken!)).toBe(true);
    });

    it('extends only for the holder, and the extension outlives the original ttl', async () => {
      const token = await lockA.acquire('order:1', SHORT);
      expect(await lockB.extend('order:1', 'not-the-token', LONG)).toBe(false);
      expect(await lockA.extend('order:1', token!, LONG)).toBe(true);
      await backend.advance(PAST);
      expect(await lockB.acquire('order:1', LONG)).toBeNull();
      expect(await lockA.release('order:1', token!)).toBe(true);
    });

    it('does not extend when a wrong token asks, so the lock still expires on time', async () => {
      await lockA.acquire('order:1', SHORT);
      expect(await lockB.extend('order:1', 'not-the-token', LONG)).toBe(false);
      await backend.advance(PAST);
      expect(await lockB.acquire('order:1', LONG)).not.toBeNull();
    });

    it('sets expiry to now + ttl on extend, which can also shorten it', async () => {
      const token = await lockA.acquire('order:1', LONG);
      expect(await lockA.extend('order:1', token!, SHORT)).toBe(true);
      await backend.advance(PAST);
      expect(await lockB.acquire('order:1', LONG)).not.toBeNull();
    });

    it('does not extend a lock nobody holds', async () => {
      expect(await lockA.extend('order:none', 'any-token', LONG)).toBe(false);
      expect(await lockA.acquire('order:none', LONG)).not.toBeNull();
    });

    it('refuses a ttl that is not a positive whole number of milliseconds', async () => {
      const token = await lockA.acquire('order:1', LONG);
      for (const ttl of [0, -1, 1.5, Number.NaN]) {
        await expect(lockB.acquire('order:2', ttl)).rejects.toThrow(RangeError);
        await expect(lockA.extend('order:1', token!, ttl)).rejects.toThrow(RangeError);
      }
      // Had the extend with 0 gone through, Redis would have deleted the lock.
      expect(await lockB.acquire('order:1', LONG)).toBeNull();
      expect(await lockB.acquire('order:2', LONG)).not.toBeNull();
    });
  });

  describe.skipIf(skip)(`${name}: Kv`, () => {
    let backend: Backend;
    let kv: Kv;
    beforeEach(async () => {
      backend = await makeBackend();
      kv = backend.kv;
    });

    it('gets what was set, null for what was not, and overwrites', async () => {
      expect(await kv.get('evt:1')).toBeNull();
      await kv.set('evt:1', 'done', LONG);
      expect(await kv.get('evt:1')).toBe('done');
      await kv.set('evt:1', 'again', LONG);
      expect(await kv.get('evt:1')).toBe('again');
    });

    it('forgets a value after its ttl, and a later set replaces the old expiry', async () => {
      await kv.set('evt:short', 'done', SHORT);
      await kv.set('evt:long', 'done', SHORT);
      await kv.set('evt:long', 'done', LONG);
      await backend.advance(PAST);
      expect(await kv.get('evt:short')).toBeNull();
      expect(await kv.get('evt:long')).toBe('done');
    });

    it('deletes, including keys that do not exist', async () => {
      await kv.set('evt:1', 'done', LONG);
      await kv.del('evt:1');
      await kv.del('evt:missing');
      expect(await kv.get('evt:1')).toBeNull();
    });

    it('counts from 1 and reads back as a string', async () => {
      expect(await kv.incr('rate:ip', LONG)).toBe(1);
      expect(await kv.incr('rate:ip', LONG)).toBe(2);
      expect(await kv.incr('rate:ip', LONG)).toBe(3);
      expect(await kv.get('rate:ip')).toBe('3');
      expect(await kv.incr('rate:other', LONG)).toBe(1);
    });

    it('counts atomically under 50 concurrent increments', async () => {
      const counts = await Promise.all(Array.from({ length: 50 }, () => kv.incr('rate:burst', LONG)));
      expect(counts.toSorted((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    });

    it('expires a counter ttl after its creation; later increments do not push the window', async () => {
      // The window is 3 × SHORT: the second increment lands a third of the way in, the last one past the
      // end of the first window but before the end of a window restarted by the second increment.
      const window = 3 * SHORT;
      expect(await kv.incr('rate:window', window)).toBe(1);
      await backend.advance(SHORT);
      expect(await kv.incr('rate:window', window)).toBe(2);
      await backend.advance(window - SHORT + SHORT / 2);
      expect(await kv.get('rate:window')).toBeNull();
      expect(await kv.incr('rate:window', window)).toBe(1);
    });

    it('refuses to increment a value that is not an integer, and leaves it alone', async () => {
      await kv.set('evt:1', 'done', LONG);
      await expect(kv.incr('evt:1', LONG)).rejects.toThrow(/not an integer/);
      expect(await kv.get('evt:1')).toBe('done');
    });

    it('refuses a ttl that is not a positive whole number of milliseconds', async () => {
      for (const ttl of [0, -1, 1.5, Number.NaN]) {
        await expect(kv.set('evt:1', 'done', ttl)).rejects.toThrow(RangeError);
        await expect(kv.incr('rate:ip', ttl)).rejects.toThrow(RangeError);
      }
      expect(await kv.get('evt:1')).toBeNull();
      expect(await kv.get('rate:ip')).toBeNull();
    });
  });
}

// Memory: the clock only moves when a test says so, which makes the expiry checks exact.
function memoryBackend(): Backend {
  let now = Date.UTC(2025, 0, 1);
  const clock = () => now;
  // One instance is what one process shares; both handles point at it.
  const lock = memoryLock(clock);
  return {
    locks: [lock, lock],
    kv: memoryKv(clock),
    advance: async (ms) => {
      now += ms;
    },
  };
}

lockAndKvContract('memory', async () => memoryBackend());

describe('memory: expiry boundary', () => {
  it('holds a lock and a value up to their deadline and drops them one millisecond after, as Redis does', async () => {
    const backend = memoryBackend();
    const [lock] = backend.locks;
    await lock!.acquire('order:1', SHORT);
    await backend.kv.set('evt:1', 'done', SHORT);
    await backend.advance(SHORT);
    expect(await lock!.acquire('order:1', LONG)).toBeNull();
    expect(await backend.kv.get('evt:1')).toBe('done');
    await backend.advance(1);
    expect(await lock!.acquire('order:1', LONG)).not.toBeNull();
    expect(await backend.kv.get('evt:1')).toBeNull();
  });

  it('keeps live keys through the sweeps that drop expired ones nobody reads again', async () => {
    const backend = memoryBackend();
    for (let i = 0; i < 5_000; i++) await backend.kv.set(`stale:${i}`, 'x', SHORT);
    await backend.advance(PAST);
    await backend.kv.set('live', 'y', LONG);
    for (let i = 0; i < 5_000; i++) await backend.kv.incr(`fresh:${i}`, LONG);
    expect(await backend.kv.get('live')).toBe('y');
    expect(await backend.kv.get('fresh:4999')).toBe('1');
  });
});

// Redis: real server, real expiry. Three connections stand in for three service instances racing.
const hasRedis = await redisAvailable();
const clients: Redis[] = [];

afterAll(async () => {
  await Promise.all(clients.map((client) => client.quit()));
});

async function redisBackend(): Promise<Backend> {
  if (clients.length === 0) {
    for (let i = 0; i < 3; i++) clients.push(createRedisClient(TEST_REDIS_URL));
    // The offline queue is off, so commands sent before `ready` would fail rather than wait.
    await Promise.all(
      clients.map((client) => (client.status === 'ready' ? undefined : once(client, 'ready'))),
    );
  }
  // A fresh prefix per test keeps parallel test files and reruns apart; every key carries a ttl of at most
  // LONG, so nothing needs cleaning up.
  const prefix = `test:${randomUUID()}:`;
  return {
    locks: clients.map((client) => redisLock(client, `${prefix}lock:`)),
    kv: redisKv(clients[0]!, prefix),
    advance: (ms) => sleep(ms),
  };
}

lockAndKvContract('redis', redisBackend, !hasRedis);
