import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/**
 * A value read from the database when /metrics is scraped, feeding one or more gauges. The gauges are
 * declared in `createMetrics` with every other metric; the module that owns the table says how to read it
 * (`collectWith`). Services built again on the same infrastructure only replace the reader, so nothing is
 * registered twice. The registry collects all of a scrape's metrics at once, so gauges fed by one source
 * find its read still in flight and share it: one query per scrape.
 */
export class ScrapeSource<T> {
  #read: (() => Promise<T>) | undefined;
  #inFlight: Promise<T> | undefined;

  collectWith(read: () => Promise<T>): void {
    this.#read = read;
  }

  /** This scrape's value; undefined while no module has said how to read it. */
  current(): Promise<T> | undefined {
    if (!this.#read) return undefined;
    this.#inFlight ??= this.#read().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }
}

/** An undelivered-notification backlog, as the notifications module counts it. */
export interface OutboxBacklog {
  pending: number;
  oldest_seconds: number;
}

/**
 * Every metric the service exports, on a registry of its own (not prom-client's global one) so that several
 * app instances in one test process never share counters.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const byType = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['type'] as const, registers: [registry] });
  /** A gauge set from `source` at each scrape; a failed read (database down) keeps the last values. */
  const gaugeFrom = <T>(
    source: ScrapeSource<T>,
    config: { name: string; help: string; labelNames?: readonly string[] },
    set: (gauge: Gauge<string>, value: T) => void,
  ) =>
    new Gauge({
      ...config,
      registers: [registry],
      async collect() {
        await source.current()?.then(
          (value) => set(this, value),
          () => {},
        );
      },
    });
  const inboxEvents = new ScrapeSource<Record<string, number>>();
  gaugeFrom(
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
  const outboxBacklog = new ScrapeSource<OutboxBacklog>();
  gaugeFrom(
    outboxBacklog,
    { name: 'outbox_pending_messages', help: 'Order notifications not yet delivered' },
    (g, backlog) => g.set(backlog.pending),
  );
  gaugeFrom(
    outboxBacklog,
    {
      name: 'outbox_oldest_pending_seconds',
      help: 'Age of the oldest undelivered order notification (0 when none)',
    },
    (g, backlog) => g.set(backlog.oldest_seconds),
  );
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
    redisFallbacks: new Counter({
      name: 'webhook_redis_fallback_total',
      help: 'Redis calls that failed, after which PostgreSQL alone decided',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    outboxDeliveryAttempts: new Counter({
      name: 'outbox_delivery_attempts_total',
      help: 'Attempts to deliver an order notification, by outcome (delivered = 2xx)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    /** `webhook_inbox_events{status}`: the webhooks module reads the count of every status. */
    inboxEvents,
    /** `outbox_pending_messages` and `outbox_oldest_pending_seconds`: the notifications module reads them. */
    outboxBacklog,
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
