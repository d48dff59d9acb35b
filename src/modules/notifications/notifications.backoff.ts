/** How failed deliveries of one message are spaced out. */
export interface RetryPolicy {
  /** Upper bound of the delay after the first failed attempt; it doubles with each further failure. */
  baseMs: number;
  /** No delay exceeds this, however many attempts have failed. */
  capMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
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
 * The delay before retrying a message whose `attempt`-th attempt (1-based) just failed: "full jitter"
 * (uniform in [0, min(cap, base·2^(attempt−1))), as in AWS's "Exponential Backoff and Jitter").
 * Randomising the whole window spreads the retries of messages that failed together — every order's head
 * message during a receiver outage — so they do not return as one burst when the receiver does.
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
  return Math.floor(random() * ceiling);
}
