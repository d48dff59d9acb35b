import { describe, expect, it } from 'vitest';
import { createMetrics } from './metrics.js';

const value = (text: string, name: string) =>
  text
    .split('\n')
    .find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    ?.split(' ')
    .at(-1);

describe('createMetrics', () => {
  it('reads the outbox backlog once per scrape for both of its gauges', async () => {
    const metrics = createMetrics();
    let reads = 0;
    metrics.outboxBacklog.collectWith(async () => {
      reads += 1;
      return { pending: 3, oldest_seconds: 42 };
    });
    const text = await metrics.registry.metrics();
    expect(reads).toBe(1);
    expect(value(text, 'outbox_pending_messages')).toBe('3');
    expect(value(text, 'outbox_oldest_pending_seconds')).toBe('42');
    await metrics.registry.metrics();
    expect(reads).toBe(2);
  });

  it('replaces its reader, and keeps the last values when a read fails', async () => {
    const metrics = createMetrics();
    metrics.inboxEvents.collectWith(async () => ({ pending: 2, done: 5 }));
    expect(await metrics.registry.metrics()).toMatch(/webhook_inbox_events\{status="done"\} 5/);
    metrics.inboxEvents.collectWith(async () => {
      throw new Error('database unavailable');
    });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/webhook_inbox_events\{status="done"\} 5/);
    expect(text).toMatch(/webhook_inbox_events\{status="pending"\} 2/);
  });
});
