/** A lease on a named resource, held by whoever knows its random token. */
export interface Lock {
  /** Try once; returns the token when acquired, null when someone else holds it. */
  acquire(key: string, ttlMs: number): Promise<string | null>;
  /** Removes the lock only if `token` still holds it; true when it did. */
  release(key: string, token: string): Promise<boolean>;
  /** Pushes expiry to now+ttlMs only if `token` still holds it; true when it did. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
}

/** 128 random bits: a lock token nobody can guess, so only the holder can release or extend its lock. */
export const LOCK_TOKEN_BYTES = 16;

/**
 * Redis rejects a zero, negative or fractional PX, and PEXPIRE with zero or less deletes the key, so an
 * `extend(key, token, 0)` would silently release. Every Lock and Kv adapter refuses such values the same way.
 */
export function assertTtlMs(ttlMs: number): void {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RangeError(`ttlMs must be a positive whole number of milliseconds, got ${ttlMs}`);
  }
}
