import { randomBytes } from 'node:crypto';
import type { Kv } from '../ports/kv.js';
import { assertTtlMs, LOCK_TOKEN_BYTES, type Lock } from '../ports/lock.js';

/**
 * In-process Lock and Kv for a single instance (no `REDIS_URL`) and for tests. They keep Redis's semantics:
 * an entry lives while `clock() <= expiresAt` (Redis expires a key once now is past its deadline), values
 * are strings, and every check-and-change runs before the first `await`, so it is atomic in one process.
 */

// Expired entries are dropped when read, but keys that are never read again (a rate-limit counter for a
// client that went away) would stay. Sweeping whenever the map has doubled since the last sweep keeps memory
// proportional to the live entries at an amortised O(1) per write; the floor avoids sweeping tiny maps.
const SWEEP_MIN_SIZE = 1024;

interface Entry {
  value: string;
  expiresAt: number;
}

class ExpiringMap {
  readonly #entries = new Map<string, Entry>();
  #sweepAt = SWEEP_MIN_SIZE;

  constructor(readonly clock: () => number) {}

  /** The live entry, or undefined (dropping it) when it has expired. */
  live(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    if (this.clock() > entry.expiresAt) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry;
  }

  put(key: string, value: string, ttlMs: number): void {
    this.#entries.set(key, { value, expiresAt: this.clock() + ttlMs });
    if (this.#entries.size >= this.#sweepAt) this.#sweep();
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  #sweep(): void {
    const now = this.clock();
    for (const [key, entry] of this.#entries) {
      if (now > entry.expiresAt) this.#entries.delete(key);
    }
    this.#sweepAt = Math.max(SWEEP_MIN_SIZE, this.#entries.size * 2);
  }
}

/** The Lock port in one process; `clock` (default `Date.now`) lets tests move time without sleeping. */
export function memoryLock(clock: () => number = Date.now): Lock {
  const locks = new ExpiringMap(clock);
  return {
    async acquire(key, ttlMs) {
      assertTtlMs(ttlMs);
      if (locks.live(key) !== undefined) return null;
      const token = randomBytes(LOCK_TOKEN_BYTES).toString('hex');
      locks.put(key, token, ttlMs);
      return token;
    },
    async release(key, token) {
      if (locks.live(key)?.value !== token) return false;
      locks.delete(key);
      return true;
    },
    async extend(key, token, ttlMs) {
      assertTtlMs(ttlMs);
      const entry = locks.live(key);
      if (entry?.value !== token) return false;
      entry.expiresAt = clock() + ttlMs;
      return true;
    },
  };
}

// What Redis's INCR accepts: an optionally negative run of digits, without spaces, signs or decimals.
const INTEGER = /^-?\d+$/;

/** The Kv port in one process; `clock` (default `Date.now`) lets tests move time without sleeping. */
export function memoryKv(clock: () => number = Date.now): Kv {
  const entries = new ExpiringMap(clock);
  return {
    async get(key) {
      return entries.live(key)?.value ?? null;
    },
    async set(key, value, ttlMs) {
      assertTtlMs(ttlMs);
      entries.put(key, value, ttlMs);
    },
    async incr(key, ttlMs) {
      assertTtlMs(ttlMs);
      const entry = entries.live(key);
      if (entry === undefined) {
        entries.put(key, '1', ttlMs);
        return 1;
      }
      const next = INTEGER.test(entry.value) ? Number(entry.value) + 1 : Number.NaN;
      // Same words as Redis's error, so callers and tests see one failure for both adapters.
      if (!Number.isSafeInteger(next)) throw new Error('value is not an integer or out of range');
      // Fixed window, as in Redis: an increment keeps the expiry the counter was created with.
      entry.value = String(next);
      return next;
    },
    async del(key) {
      entries.delete(key);
    },
  };
}
