import { Webhook } from 'standardwebhooks';
import { queueWorker, type Worker } from '../../jobs/index.js';
import type { Db } from '../../ports/db.js';
import { NOTIFICATION_RETRY, type RetryPolicy } from '../../shared/backoff.js';
import { secretScrubber } from '../../shared/redact.js';
import { type ClaimedMessage, markDelivered, OUTBOX_QUEUE } from './notifications.sql.js';

// Receivers are expected to acknowledge and queue (Standard Webhooks guidance), which takes milliseconds;
// 10 s allows for a cold start or a slow network while keeping a hung receiver from holding a worker long.
const REQUEST_TIMEOUT_MS = 10_000;
// The lease must outlast the request and the write that records its result, or a second relay could send
// the message while the first still counts it as in flight. 20 s beyond the timeout covers a database write
// stuck behind a busy pool (its connect timeout is 3 s) many times over; it is also how long a message
// claimed by a relay that crashed waits before another relay picks it up.
const LEASE_MARGIN_MS = 20_000;
// Messages of different orders are sent in parallel within a batch. 20 bounds the sockets one relay opens
// against a struggling receiver, and still drains ~20 messages per round trip per relay.
const BATCH_SIZE = 20;
// A new message waits at most this long for a relay that found nothing to do; one indexed query per second
// per relay is negligible load.
const IDLE_MS = 1_000;
// What is kept of a receiver's error answer in `last_error`: enough to see its reason, not its whole page.
const ERROR_BODY_CHARS = 200;
// Twice as much is read and scrubbed before it is cut, so that a secret the receiver echoes across the cut
// is still whole when it is looked for, rather than kept as its first characters.
const ERROR_BODY_READ_CHARS = 2 * ERROR_BODY_CHARS;

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

/**
 * Delivers the outbox to the Orders service (CONTRACT §4), at least once, signed with the Standard Webhooks
 * scheme. Every attempt of a message carries the same `webhook-id` (the message id) and the same body, with
 * a fresh `webhook-timestamp` and signature. A 2xx marks the message delivered; anything else — another
 * status (redirects are not followed), a refused connection, a timeout — records the error and schedules a
 * retry with capped exponential backoff and full jitter. Messages are never given up on: the order's next
 * messages wait for them, and the backlog shows in `outbox_pending_messages` / `outbox_oldest_pending_seconds`.
 *
 * Any number of relays, in any number of processes, may run on one database: the outbox is a queue of the
 * job mechanism (src/jobs, and OUTBOX_QUEUE for the per-order ordering).
 */
export function createOutboxRelay(opts: OutboxRelayOptions): Worker {
  const webhook = signer(opts.secret);
  const timeoutMs = opts.timeoutMs ?? REQUEST_TIMEOUT_MS;
  // `last_error` is read by operators and copied into tickets: the URL (its path or query may be the
  // receiver's credential) and the secret are hidden from what fetch and the receiver say.
  const scrub = secretScrubber([opts.url, opts.secret]);

  /** One try of one message; throws what the receiver or the network said when it was not a 2xx. */
  async function send(message: ClaimedMessage): Promise<void> {
    const body = JSON.stringify(message.payload);
    const sentAt = new Date();
    let res: Response;
    let answer: string;
    try {
      res = await fetch(opts.url, {
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
      answer = scrub(await textPrefix(res, ERROR_BODY_READ_CHARS))
        .slice(0, ERROR_BODY_CHARS)
        .trim();
    } catch (err) {
      opts.onAttempt?.('failed');
      throw new Error(scrub(describeFailure(err, timeoutMs)));
    }
    const ok = res.status >= 200 && res.status < 300;
    opts.onAttempt?.(ok ? 'delivered' : 'failed');
    if (!ok) throw new Error(`HTTP ${res.status}${answer ? `: ${answer}` : ''}`);
    await opts.db.query(markDelivered(message.id, message.attempts));
  }

  return queueWorker<ClaimedMessage>({
    name: 'outbox-relay',
    db: opts.db,
    queue: OUTBOX_QUEUE,
    policy: opts.retry ?? NOTIFICATION_RETRY,
    batchSize: opts.batchSize ?? BATCH_SIZE,
    leaseMs: timeoutMs + LEASE_MARGIN_MS,
    idleMs: IDLE_MS,
    parallel: true,
    keyOf: (message) => message.id,
    run: send,
    ...(opts.random ? { random: opts.random } : {}),
  });
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
