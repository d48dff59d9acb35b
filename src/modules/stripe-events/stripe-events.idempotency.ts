import type { Logger } from 'pino';
import type { Db } from '../../ports/db.js';
import type { Kv } from '../../ports/kv.js';
import type { Lock } from '../../ports/lock.js';
import type { StripeEventsMetrics } from './stripe-events.metrics.js';
import { type InboxStatus, SETTLED, selectEventStatus } from './stripe-events.sql.js';

/**
 * The seed's WebhookIdempotencyService, with its names and its flow — check seen → lock → re-check →
 * process → mark complete → release — and with the guarantee moved to PostgreSQL (DESIGN §3):
 *
 * - "seen" is decided by the inbox row's status. The Kv marker (Redis) is a cache written after the commit;
 *   it is trusted only where the row agrees. A marker the row contradicts (another deployment's, on a Redis
 *   its keys were not kept apart on; or one that outlived a database restored from a backup) is counted,
 *   dropped, and the event is applied.
 * - the lock (Redis `SET NX PX`, or in-process) only keeps two workers from doing the same work at once.
 *   The processor itself locks the inbox row and skips a row already settled, so an expired lock, a Redis
 *   outage or a second instance can waste work but never apply an event twice.
 * - every Redis failure degrades to PostgreSQL alone: logged once per outage, counted, never fatal.
 */

/** How long the "already processed" marker is kept: Stripe stops retrying an event after 3 days. */
export const EVENT_EXPIRY_DAYS = 7;
/**
 * How long one worker may hold an event before another may try: far above the few milliseconds an event
 * takes, so it expires only for a stalled or dead holder, and short enough that such an event is taken over
 * well before Stripe's next retry.
 */
export const LOCK_TIMEOUT_SECONDS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;

/** What the processor reports: the inbox row's status after it ran, and whether it found it already settled. */
export interface ProcessResult {
  status: InboxStatus;
  reason: string | null;
  /** The row was settled before this processor got to it: someone else did the work. */
  settledBefore: boolean;
  orderId: string | null;
  /** Events deferred on the order, whose next try this one claimed as it moved the order: to apply next. */
  woken: ClaimedEvent[];
}

/** An event whose next try was claimed (by a retry worker, a redelivery or a wake): the try it holds. */
export interface ClaimedEvent {
  id: string;
  type: string;
  attempts: number;
}

export type IdempotentOutcome =
  | { kind: 'duplicate' }
  /** Another worker holds the event; it will settle it (or its lock expires and a retry does). */
  | { kind: 'locked' }
  | { kind: 'processed'; result: ProcessResult };

/** A held event lock. `token` is null when Redis was unreachable and PostgreSQL alone guards the event. */
export interface EventLock {
  token: string | null;
}

export interface IdempotencyDeps {
  db: Db;
  lock: Lock;
  kv: Kv;
  metrics: Pick<
    StripeEventsMetrics,
    'redisFallbacks' | 'lockContention' | 'processingSeconds' | 'staleMarkers'
  >;
  log: Logger;
  /** Defaults to LOCK_TIMEOUT_SECONDS; tests shorten it to make a lock expire under a slow processor. */
  lockTimeoutMs?: number;
}

const markerKey = (eventId: string) => `stripe:event:${eventId}`;
const lockKey = (eventId: string) => `stripe:event:${eventId}`;

/** The service's dependencies and the little state one instance keeps. */
interface Guard extends IdempotencyDeps {
  lockTimeoutMs: number;
  /** Redis failed last time: the next success is logged as the end of the outage. */
  degraded: boolean;
  /**
   * The newest lock this instance took per event, for the seed's one-argument `releaseEventLock(eventId)`.
   * The flow passes its own lock instead, so two holders in one process never release each other's.
   */
  held: Map<string, EventLock>;
}

/** Runs a Redis call; on failure logs (once per outage), counts, and returns `fallback`. */
async function orFallback<T>(g: Guard, operation: string, call: () => Promise<T>, fallback: T): Promise<T> {
  try {
    const value = await call();
    if (g.degraded) {
      g.degraded = false;
      g.log.info({ operation }, 'Redis answers again: event locks and processed markers are back in use');
    }
    return value;
  } catch (err) {
    g.metrics.redisFallbacks.inc({ operation });
    if (!g.degraded) {
      g.degraded = true;
      g.log.warn({ err, operation }, 'Redis unavailable: webhook events are guarded by PostgreSQL alone');
    }
    return fallback;
  }
}

/**
 * True once the inbox row says the event is settled (applied, ignored or dead-lettered). The marker is read
 * beside the row, never instead of it: one that claims an event the row has not settled is stale, and goes.
 * `recordedNow`: the caller inserted the row a moment ago, so it is not settled and is not read again (were
 * it settled since, the processor's row lock would find it so).
 */
async function isDuplicateEvent(g: Guard, eventId: string, recordedNow = false): Promise<boolean> {
  const [marker, row] = await Promise.all([
    orFallback(g, 'get_marker', () => g.kv.get(markerKey(eventId)), null),
    recordedNow
      ? undefined
      : g.db.query<{ status: InboxStatus }>(selectEventStatus(eventId)).then((r) => r.rows[0]),
  ]);
  const settled = row !== undefined && SETTLED.includes(row.status);
  if (marker !== null && !settled) {
    g.metrics.staleMarkers.inc();
    await orFallback(g, 'del_marker', () => g.kv.del(markerKey(eventId)), undefined);
  }
  return settled;
}

/** The lock, or null when another worker holds it. When Redis is down: a lock with no token. */
async function acquireEventLock(g: Guard, eventId: string): Promise<EventLock | null> {
  const token = await orFallback<string | null | undefined>(
    g,
    'acquire_lock',
    () => g.lock.acquire(lockKey(eventId), g.lockTimeoutMs),
    undefined,
  );
  if (token === null) return null;
  const lock = { token: token ?? null };
  g.held.set(eventId, lock);
  return lock;
}

/**
 * Compare-and-delete: removes the lock only while `lock` still holds it. A holder whose lock expired and was
 * taken over releases nothing, so it cannot free the new holder's lock. True when it released.
 */
async function releaseEventLock(g: Guard, eventId: string, lock = g.held.get(eventId)): Promise<boolean> {
  if (lock && g.held.get(eventId) === lock) g.held.delete(eventId);
  const token = lock?.token ?? null;
  if (token === null) return false;
  return orFallback(g, 'release_lock', () => g.lock.release(lockKey(eventId), token), false);
}

/** Writes the "processed" marker after the commit; a cache in front of the inbox row, kept EVENT_EXPIRY_DAYS. */
async function markEventProcessed(g: Guard, eventId: string, eventType: string): Promise<void> {
  await orFallback(
    g,
    'set_marker',
    () => g.kv.set(markerKey(eventId), eventType, EVENT_EXPIRY_DAYS * DAY_MS),
    undefined,
  );
}

/**
 * check seen → lock → re-check → process → mark complete → release. `processor` runs the event's one
 * transaction and reports the inbox row's status; it must itself skip a row that is already settled.
 * `recordedNow`: the caller has just inserted the inbox row (see `isDuplicateEvent`).
 */
async function handleEventWithIdempotency(
  g: Guard,
  eventId: string,
  eventType: string,
  processor: () => Promise<ProcessResult>,
  recordedNow = false,
): Promise<IdempotentOutcome> {
  if (await isDuplicateEvent(g, eventId, recordedNow)) return { kind: 'duplicate' };
  const lock = await acquireEventLock(g, eventId);
  if (!lock) {
    g.metrics.lockContention.inc();
    return { kind: 'locked' };
  }
  try {
    // The holder before us may have finished between our check and our lock.
    if (await isDuplicateEvent(g, eventId, recordedNow)) return { kind: 'duplicate' };
    const stop = g.metrics.processingSeconds.startTimer({ type: eventType });
    let result: ProcessResult;
    try {
      result = await processor();
    } finally {
      stop();
    }
    if (result.settledBefore) return { kind: 'duplicate' };
    if (result.status === 'done' || result.status === 'ignored')
      await markEventProcessed(g, eventId, eventType);
    return { kind: 'processed', result };
  } finally {
    await releaseEventLock(g, eventId, lock);
  }
}

/** The seed's service, its methods bound to one instance's dependencies and state. */
export function createWebhookIdempotencyService(deps: IdempotencyDeps) {
  const g: Guard = {
    ...deps,
    lockTimeoutMs: deps.lockTimeoutMs ?? LOCK_TIMEOUT_SECONDS * 1000,
    degraded: false,
    held: new Map(),
  };
  return {
    EVENT_EXPIRY_DAYS,
    LOCK_TIMEOUT_SECONDS,
    lockTimeoutMs: g.lockTimeoutMs,
    isDuplicateEvent: (eventId: string) => isDuplicateEvent(g, eventId),
    acquireEventLock: (eventId: string) => acquireEventLock(g, eventId),
    releaseEventLock: (eventId: string, lock?: EventLock) =>
      releaseEventLock(g, eventId, lock ?? g.held.get(eventId)),
    markEventProcessed: (eventId: string, eventType: string) => markEventProcessed(g, eventId, eventType),
    /** Drops the marker, for `events replay` of an event that was ignored. */
    forgetEvent: (eventId: string) =>
      orFallback(g, 'del_marker', () => g.kv.del(markerKey(eventId)), undefined),
    handleEventWithIdempotency: (
      eventId: string,
      eventType: string,
      processor: () => Promise<ProcessResult>,
      recordedNow?: boolean,
    ) => handleEventWithIdempotency(g, eventId, eventType, processor, recordedNow),
  };
}

export type WebhookIdempotencyService = ReturnType<typeof createWebhookIdempotencyService>;
