import type { Registry } from 'prom-client';
import { counter, gaugeFrom, histogram, scrapeSource } from '../../shared/metrics.js';

/** The webhook metrics of CONTRACT §3's /metrics, declared on the process's registry. */
export function stripeEventsMetrics(registry: Registry) {
  const byType = (name: string, help: string) =>
    counter(registry, { name, help, labelNames: ['type'] as const });
  const inboxEvents = scrapeSource<Record<string, number>>(registry, 'webhook_inbox_events');
  gaugeFrom(
    registry,
    inboxEvents,
    {
      name: 'webhook_inbox_events',
      help: 'Stripe events in the inbox by status (the backlog is pending + deferred)',
      labelNames: ['status'],
    },
    (g, counts) => {
      g.reset();
      for (const [status, n] of Object.entries(counts)) g.set({ status }, n);
    },
  );
  return {
    received: byType('webhook_events_received_total', 'Verified Stripe events recorded in the inbox'),
    processed: byType('webhook_events_processed_total', 'Stripe events whose effects were applied'),
    duplicate: byType('webhook_events_duplicate_total', 'Deliveries of an event already recorded'),
    ignored: byType('webhook_events_ignored_total', 'Events recorded and deliberately not applied'),
    deferred: byType('webhook_events_deferred_total', 'Events that arrived before what they depend on'),
    failed: byType('webhook_events_failed_total', 'Events that reached the retry limit (dead letters)'),
    processingSeconds: histogram(registry, {
      name: 'webhook_processing_seconds',
      help: 'Time to apply one Stripe event, lock to commit',
      labelNames: ['type'] as const,
      // Most events commit in a few milliseconds; the tail shows lock waits and slow databases.
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    }),
    lockContention: counter(registry, {
      name: 'webhook_lock_contention_total',
      help: 'Times an event lock was already held by another worker',
    }),
    staleMarkers: counter(registry, {
      name: 'webhook_stale_markers_total',
      help: 'Redis "processed" markers the inbox contradicted (another deployment, or a restored database)',
    }),
    redisFallbacks: counter(registry, {
      name: 'webhook_redis_fallback_total',
      help: 'Redis calls that failed, after which PostgreSQL alone decided',
      labelNames: ['operation'] as const,
    }),
    /** `webhook_inbox_events{status}`: read from the inbox at each scrape. */
    inboxEvents,
  };
}

export type StripeEventsMetrics = ReturnType<typeof stripeEventsMetrics>;
