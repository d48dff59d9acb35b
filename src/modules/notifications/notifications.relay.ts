import { Webhook } from 'standardwebhooks';
import type { Db } from '../../ports/db.js';
import { NOTIFICATION_RETRY, type RetryPolicy, retryDelayMs } from '../../shared/backoff.js';
import type { Worker } from '../../workers/runner.js';
import { type ClaimedMessage, claimDue, markDelivered, markFailed } from './notifications.sql.js';

// Receivers are expected to acknowledge and queue (Standard Webhooks guidance), which takes milliseconds;
// 10 s allows for a cold start or a slow network while keeping a hung receiver from holding a worker long.
const REQUEST_TIMEOUT_MS = 10_000;
// The lease must outlast the request and the write that records its result, or a second relay could send
// the message while the first still counts it as in flight. 20 s beyond the timeout covers a database write
// stuck behind a busy pool (its connect timeout is 3 s) many times over; it is also how long a message
// claimed by a relay that crashed waits before another relay picks it up.
const LEASE_MARGIN_SECONDS = 20;
// Messages of different orders are sent in parallel within a batch. 20 bounds the sockets one relay opens
// against a struggling receiver, and still drains ~20 messages per round trip per relay.
const BATCH_SIZE = 20;
// A new message waits at most this long for a relay that found nothing to do; one indexed query per second
// per relay is negligible load.
const IDLE_MS = 1_000;
// What is kept of a receiver's error answer in `last_error`: enough to see its reason, not its whole page.
const ERROR_BODY_CHARS = 200;

export interface OutboxRelayOptions {
  db: Db;
  /** The Orders service's endpoint (ORDERS_WEBHOOK_URL). */
  url: string;
  /** The `whsec_…` secret (ORDERS_WEBHOOK_SECRET); its base64 part, which must decode, is the HMAC key. */
  secret: string;
  retry?: RetryPolicy;
  timeoutMs?: number;
  batchSize?: number;
  /** Source of the retry jitter, in [0, 1). */
  random?: () => number;
  /** Called once per attempt, e.g. to count attempts by outcome. */
  onAttempt?: (outcome: 'delivered' | 'failed') => void;
}

type Outcome = { ok: true } | { ok: false; error: string };

/**
 * Delivers the outbox to the Orders service (CONTRACT §4), at least once, signed with the Standard Webhooks
 * scheme. Every attempt of a message carries the same `webhook-id` (the message id) and the same body, with
 * a fresh `webhook-timestamp` and signature. A 2xx marks the message delivered; anything else — another
 * status (redirects are not followed), a refused connection, a timeout — records the error and schedules a
 * retry with capped exponential backoff and full jitter. Messages are never given up on: the order's next
 * messages wait for them, and the backlog shows in `outbox_pending_messages` / `outbox_oldest_pending_seconds`.
 *
 * Any number of relays, in any number of processes, may run on one database (see `claimDue`). Due times are
 * read from the database's clock, so relays on hosts whose clocks disagree still agree on what is due.
 */
export function createOutboxRelay(opts: OutboxRelayOptions): Worker {
  const webhook = signer(opts.secret);
  const retry = opts.retry ?? NOTIFICATION_RETRY;
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  const leaseSeconds = Math.ceil(timeoutMs / 1000) + LEASE_MARGIN_SECONDS;
  const random = opts.random ?? Math.random;

  async function send(message: ClaimedMessage): Promise<Outcome> {
    const body = JSON.stringify(message.payload);
    const sentAt = new Date();
    try {
      const res = await fetch(opts.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'payments-service',
          'webhook-id': message.id,
          'webhook-timestamp': String(Math.floor(sentAt.getTime() / 1000)),
          'webhook-signature': webhook.sign(message.id, sentAt, body),
        },
        body,
        // A redirect is the receiver's configuration problem; following it would turn the POST into a GET.
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
      });
      // Read (part of) the answer inside the same timeout, which also frees the connection for reuse.
      const answer = await textPrefix(res, ERROR_BODY_CHARS);
      if (res.status >= 200 && res.status < 300) return { ok: true };
      return { ok: false, error: `HTTP ${res.status}${answer ? `: ${answer}` : ''}` };
    } catch (err) {
      return { ok: false, error: describeFailure(err, timeoutMs) };
    }
  }

  async function attempt(message: ClaimedMessage): Promise<void> {
    const outcome = await send(message);
    if (outcome.ok) {
      await opts.db.query(markDelivered(message.id, message.attempts));
    } else {
      const delayMs = retryDelayMs(message.attempts, retry, random);
      await opts.db.query(markFailed(message.id, message.attempts, outcome.error, delayMs / 1000));
    }
    opts.onAttempt?.(outcome.ok ? 'delivered' : 'failed');
  }

  return {
    name: 'outbox-relay',
    idleMs: IDLE_MS,
    async runOnce() {
      const { rows } = await opts.db.query<ClaimedMessage>(
        claimDue(opts.batchSize ?? BATCH_SIZE, leaseSeconds),
      );
      // Every attempt finishes (and records its result) before a failure to record one is reported; a result
      // that could not be recorded leaves the message leased, so it is sent again once the lease runs out.
      const settled = await Promise.allSettled(rows.map(attempt));
      const failure = settled.find((s) => s.status === 'rejected');
      if (failure) throw failure.reason;
      return rows.length;
    },
  };
}

/**
 * The Standard Webhooks signer for `secret`. Configuration has checked the `whsec_` prefix; what it cannot
 * check is that the rest decodes as base64, which the library does here.
 */
function signer(secret: string): Webhook {
  try {
    return new Webhook(secret);
  } catch {
    // The library's own message would be about base64; say which setting is wrong, never its value.
    throw new Error('ORDERS_WEBHOOK_SECRET is not a valid whsec_ secret (base64 after the prefix)');
  }
}

async function textPrefix(res: Response, chars: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (text.length < chars) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text.slice(0, chars).trim();
}

/** fetch reports every network failure as "fetch failed"; the cause (ECONNREFUSED, …) is what helps. */
function describeFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && err.name === 'TimeoutError') return `timeout after ${timeoutMs} ms`;
  if (err instanceof Error && err.cause instanceof Error) {
    const code = (err.cause as NodeJS.ErrnoException).code;
    return code ? `${code}: ${err.cause.message}` : err.cause.message;
  }
  return err instanceof Error ? err.message : String(err);
}
