import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * Every metric the service exports, on a registry of its own (not prom-client's global one) so that several
 * app instances in one test process never share counters.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const byType = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['type'] as const, registers: [registry] });
  return {
    registry,
    eventsReceived: byType('webhook_events_received_total', 'Verified Stripe events recorded in the inbox'),
    eventsProcessed: byType('webhook_events_processed_total', 'Stripe events whose effects were applied'),
    eventsDuplicate: byType('webhook_events_duplicate_total', 'Deliveries of an event already recorded'),
    eventsIgnored: byType('webhook_events_ignored_total', 'Events recorded and deliberately not applied'),
    eventsDeferred: byType('webhook_events_deferred_total', 'Events that arrived before what they depend on'),
    eventsFailed: byType('webhook_events_failed_total', 'Events that reached the retry limit (dead letters)'),
    processingSeconds: new Histogram({
      name: 'webhook_processing_seconds',
      help: 'Time to apply one Stripe event, lock to commit',
      labelNames: ['type'] as const,
      // Most events commit in a few milliseconds; the tail shows lock waits and slow databases.
      buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    lockContention: new Counter({
      name: 'webhook_lock_contention_total',
      help: 'Times an event lock was already held by another worker',
      registers: [registry],
    }),
    /** Adds a gauge whose value is read when /metrics is scraped (backlogs counted in the database). */
    gauge(name: string, help: string, labelNames: string[], collect: (g: Gauge<string>) => Promise<void>) {
      return new Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        async collect() {
          await collect(this).catch(() => {});
        },
      });
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
