import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { memoryKv, memoryLock } from '../../adapters/memory.js';
import type { Db } from '../../ports/db.js';
import { createRegistry } from '../../shared/metrics.js';
import { createWebhookIdempotencyService } from './stripe-events.idempotency.js';
import { stripeEventsMetrics } from './stripe-events.metrics.js';

describe('handleEventWithIdempotency', () => {
  it('times a processor that throws, and releases the event lock', async () => {
    // An inbox without the event: never a duplicate, so the processor runs.
    const db = { query: async () => ({ rows: [], rowCount: 0 }) } as unknown as Db;
    const metrics = stripeEventsMetrics(createRegistry());
    const lock = memoryLock();
    const idempotency = createWebhookIdempotencyService({
      db,
      lock,
      kv: memoryKv(),
      metrics,
      log: pino({ level: 'silent' }),
    });
    const failure = new Error('the database went away');
    await expect(
      idempotency.handleEventWithIdempotency('evt_timed', 'charge.refunded', async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    const timed = (await metrics.processingSeconds.get()).values.find(
      (v) => v.metricName === 'webhook_processing_seconds_count' && v.labels.type === 'charge.refunded',
    );
    expect(timed?.value).toBe(1);
    expect(await idempotency.acquireEventLock('evt_timed')).not.toBeNull();
  });

  it("keeps the seed's one-argument releaseEventLock(eventId), which never frees another holder's lock", async () => {
    let now = 1_000_000;
    const lock = memoryLock(() => now);
    const db = { query: async () => ({ rows: [], rowCount: 0 }) } as unknown as Db;
    const instance = () =>
      createWebhookIdempotencyService({
        db,
        lock,
        kv: memoryKv(() => now),
        metrics: stripeEventsMetrics(createRegistry()),
        log: pino({ level: 'silent' }),
      });
    const a = instance();
    const b = instance();
    expect(await a.acquireEventLock('evt_seed')).not.toBeNull();
    expect(await b.acquireEventLock('evt_seed')).toBeNull();
    expect(await a.releaseEventLock('evt_seed')).toBe(true);
    expect(await b.acquireEventLock('evt_seed')).not.toBeNull();
    // b's lock expires and a takes the event over; b's late release must leave a's lock alone.
    now += a.lockTimeoutMs + 1;
    expect(await a.acquireEventLock('evt_seed')).not.toBeNull();
    expect(await b.releaseEventLock('evt_seed')).toBe(false);
    expect(await b.acquireEventLock('evt_seed')).toBeNull();
  });
});
