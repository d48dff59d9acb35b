import type { Logger } from 'pino';
import type { Worker } from '../../workers/runner.js';
import type { WebhooksService } from './webhooks.service.js';

/** Events per claim: small enough that one batch finishes well within the claim's lease. */
const RETRY_BATCH = 20;
// With nothing due, a second's pause costs nothing and keeps a retry at most a second late.
const RETRY_IDLE_MS = 1_000;

/** Applies inbox events left pending (a crashed inline attempt) or deferred, when their backoff is due. */
export function webhookRetryWorker(webhooks: WebhooksService): Worker {
  return { name: 'webhook-retries', idleMs: RETRY_IDLE_MS, runOnce: () => webhooks.processDue(RETRY_BATCH) };
}

/**
 * Every 5 minutes: a missed delivery is healed within minutes, and the listing stays cheap (one request per
 * 100 events of the window).
 */
const RECONCILE_EVERY_MS = 5 * 60_000;
/** The first run after a start looks back a day, past any restart or deploy gap worth healing automatically. */
const FIRST_WINDOW_MS = 24 * 60 * 60_000;
/** Later runs overlap the previous one by this much, so an event created during a run is never missed. */
const OVERLAP_MS = 10 * 60_000;
/**
 * Events younger than this are still being delivered by Stripe (it sends within seconds); leaving them to
 * their webhook spares recording each one twice.
 */
const SETTLE_SECONDS = 60;
/** How often the loop looks at the clock; a run that failed (Stripe unreachable) is tried again this soon. */
const CHECK_EVERY_MS = 30_000;

/** The periodic reconciliation: lists Stripe's events and records and applies any the inbox lacks. */
export function reconciliationWorker(webhooks: WebhooksService, log: Logger): Worker {
  let lastStart: number | undefined;
  return {
    name: 'stripe-reconciliation',
    idleMs: CHECK_EVERY_MS,
    async runOnce() {
      const now = Date.now();
      if (lastStart !== undefined && now - lastStart < RECONCILE_EVERY_MS) return 0;
      const since = new Date(lastStart === undefined ? now - FIRST_WINDOW_MS : lastStart - OVERLAP_MS);
      const summary = await webhooks.reconcile({ since, settledBeforeSeconds: SETTLE_SECONDS });
      lastStart = now;
      if (summary.recorded > 0)
        log.warn({ summary }, 'reconciliation recorded events that no webhook had delivered');
      return 0;
    },
  };
}
