/** Small key-value store with expiry: caches and counters, never the source of truth. */
export interface Kv {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Atomically increments a counter, setting its expiry when created; returns the new value (rate limits, velocity). */
  incr(key: string, ttlMs: number): Promise<number>;
  del(key: string): Promise<void>;
}
