import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  Histogram,
  type HistogramConfiguration,
  Registry,
} from 'prom-client';

/**
 * The process's metrics registry (not prom-client's global one, so several app instances in one test process
 * never share counters). Each module declares its own metrics on it, through the helpers below: they return
 * the metric already registered under a name, so a module built twice on one registry (tests do) shares its
 * counters instead of failing to register them again.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

function registered<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

export const counter = <L extends string>(registry: Registry, config: CounterConfiguration<L>) =>
  registered(registry, config.name, () => new Counter({ ...config, registers: [registry] }));

export const histogram = <L extends string>(registry: Registry, config: HistogramConfiguration<L>) =>
  registered(registry, config.name, () => new Histogram({ ...config, registers: [registry] }));

/**
 * A value read from the database when /metrics is scraped, feeding one or more gauges. The module that owns
 * the table says how to read it (`collectWith`); building the module again only replaces the reader. The
 * registry collects all of a scrape's metrics at once, so gauges fed by one source find its read still in
 * flight and share it: one query per scrape.
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

const sources = new WeakMap<Registry, Map<string, ScrapeSource<unknown>>>();

/** The registry's source named `name`, made on first use. */
export function scrapeSource<T>(registry: Registry, name: string): ScrapeSource<T> {
  const byName = sources.get(registry) ?? new Map<string, ScrapeSource<unknown>>();
  sources.set(registry, byName);
  const source = byName.get(name) ?? new ScrapeSource<unknown>();
  byName.set(name, source);
  return source as ScrapeSource<T>;
}

/** A gauge set from `source` at each scrape; a failed read (database down) keeps the last values. */
export function gaugeFrom<T>(
  registry: Registry,
  source: ScrapeSource<T>,
  config: { name: string; help: string; labelNames?: readonly string[] },
  set: (gauge: Gauge<string>, value: T) => void,
): Gauge<string> {
  return registered(
    registry,
    config.name,
    () =>
      new Gauge({
        ...config,
        registers: [registry],
        async collect() {
          await source.current()?.then(
            (value) => set(this, value),
            () => {},
          );
        },
      }),
  );
}
