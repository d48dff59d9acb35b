/** How the retries of one thing that keeps failing are spaced out. */
export interface RetryPolicy {
  /** Upper bound of the delay after the first failed attempt; it doubles with each further failure. */
  baseMs: number;
  /** No delay exceeds this, however many attempts have failed. */
  capMs: number;
  /**
   * `full`: uniform in [0, window) — spreads best, for work that may retry early (notifications).
   * `equal`: uniform in [window/2, window) — still spread, but every delay grows, so a retry limit also
   * bounds time from below (the webhook inbox's dead letters come no sooner than a day).
   */
  jitter?: 'full' | 'equal';
}

/** Order notifications: never given up on, full jitter. */
export const NOTIFICATION_RETRY: RetryPolicy = {
  // A receiver that is restarting or briefly overloaded is usually back within seconds, so the first retries
  // come soon: within 5 s, 10 s, 20 s, … The window reaches the cap at the eighth failure, after at most ~11 min
  // (5 on average) of retrying.
  baseMs: 5_000,
  // A message is never given up on (dropping one would leave the Orders service with a gap it cannot fill,
  // and the order's later messages wait behind it anyway), so the cap bounds two things: how long after a
  // long outage ends the backlog starts moving again (at most 10 min, 5 on average), and the load the
  // retries put on a receiver that is down (one request per blocked order per 5 min on average).
  capMs: 10 * 60_000,
};

/**
 * The delay before retrying something whose `attempt`-th attempt (1-based) just failed: exponential, capped,
 * with jitter (AWS's "Exponential Backoff and Jitter"). Randomising spreads the retries of things that failed
 * together — every order's head message during a receiver outage — so they do not return as one burst.
 */
export function retryDelayMs(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  if (!Number.isInteger(attempt) || attempt < 1)
    throw new RangeError(`attempt must be a positive integer, got ${attempt}`);
  // 2 ** n overflows to Infinity for large n, which min() turns into the cap: no clamp on the exponent needed.
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** (attempt - 1));
  const floor = policy.jitter === 'equal' ? ceiling / 2 : 0;
  return Math.floor(floor + random() * (ceiling - floor));
}
