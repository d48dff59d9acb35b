import { describe, expect, it } from 'vitest';
import { counter, createRegistry, gaugeFrom, scrapeSource } from './metrics.js';

const value = (text: string, name: string) =>
  text
    .split('\n')
    .find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    ?.split(' ')
    .at(-1);

describe('module metrics on one registry', () => {
  it('reads a source once per scrape for every gauge it feeds', async () => {
    const registry = createRegistry();
    const source = scrapeSource<{ pending: number; oldest_seconds: number }>(registry, 'backlog');
    gaugeFrom(registry, source, { name: 'pending_messages', help: 'p' }, (g, v) => g.set(v.pending));
    gaugeFrom(registry, source, { name: 'oldest_pending_seconds', help: 'o' }, (g, v) =>
      g.set(v.oldest_seconds),
    );
    let reads = 0;
    source.collectWith(async () => {
      reads += 1;
      return { pending: 3, oldest_seconds: 42 };
    });
    const text = await registry.metrics();
    expect(reads).toBe(1);
    expect(value(text, 'pending_messages')).toBe('3');
    expect(value(text, 'oldest_pending_seconds')).toBe('42');
    await registry.metrics();
    expect(reads).toBe(2);
  });

  it('replaces its reader, and keeps the last values when a read fails', async () => {
    const registry = createRegistry();
    const declare = () => {
      const source = scrapeSource<Record<string, number>>(registry, 'inbox');
      gaugeFrom(
        registry,
        source,
        { name: 'inbox_events', help: 'i', labelNames: ['status'] },
        (g, counts) => {
          g.reset();
          for (const [status, n] of Object.entries(counts)) g.set({ status }, n);
        },
      );
      return source;
    };
    declare().collectWith(async () => ({ pending: 2, done: 5 }));
    expect(await registry.metrics()).toMatch(/inbox_events\{status="done"\} 5/);
    // The module built again on the same registry: same gauge, new reader.
    declare().collectWith(async () => {
      throw new Error('database unavailable');
    });
    const text = await registry.metrics();
    expect(text).toMatch(/inbox_events\{status="done"\} 5/);
    expect(text).toMatch(/inbox_events\{status="pending"\} 2/);
  });

  it('gives a module built twice the counter it registered the first time', () => {
    const registry = createRegistry();
    const first = counter(registry, { name: 'things_total', help: 't' });
    first.inc();
    expect(counter(registry, { name: 'things_total', help: 't' })).toBe(first);
  });
});
