/** A lease on a named resource, held by whoever knows its random token. */
export interface Lock {
  /** Try once; returns the token when acquired, null when someone else holds it. */
  acquire(key: string, ttlMs: number): Promise<string | null>;
  /** Removes the lock only if `token` still holds it; true when it did. */
  release(key: string, token: string): Promise<boolean>;
  /** Pushes expiry to now+ttlMs only if `token` still holds it; true when it did. */
  extend(key: string, token: string, ttlMs: number): Promise<boolean>;
}
