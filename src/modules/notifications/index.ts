import type { Registry } from 'prom-client';
import type { Db, Queryable } from '../../ports/db.js';
import { counter, gaugeFrom, scrapeSource } from '../../shared/metrics.js';
import { defineModule } from '../module.js';
import { createOutboxRelay } from './notifications.relay.js';
import { insertMessage, selectBacklog } from './notifications.sql.js';

export { createOutboxRelay, type OutboxRelayOptions } from './notifications.relay.js';

/**
 * Order notifications (CONTRACT §4): the outbox (owned here), the relay that delivers it to the Orders
 * service, and its backlog as metrics.
 */

/** A message as the orders module writes it, in the transaction of the change it announces. */
export interface OrderMessage {
  id: string;
  orderId: string;
  seq: number;
  type: string;
  payload: Record<string, unknown>;
}

/** Queues `message` for delivery, in the caller's transaction: it exists exactly when the change does. */
export async function enqueueMessage(q: Queryable, message: OrderMessage): Promise<void> {
  await q.query(insertMessage(message));
}

export interface Backlog {
  /** Messages not yet delivered. */
  pending: number;
  /** Age of the oldest undelivered message, in seconds; 0 when nothing is pending. */
  oldest_seconds: number;
}

export async function backlog(q: Queryable): Promise<Backlog> {
  const row = (await q.query<Backlog>(selectBacklog())).rows[0];
  return { pending: row?.pending ?? 0, oldest_seconds: row?.oldest_seconds ?? 0 };
}

export interface NotificationsDeps {
  db: Db;
  registry: Registry;
  /** ORDERS_WEBHOOK_URL and its `whsec_` secret; absent, messages wait in the outbox. */
  ordersWebhook: { url: string; secret: string } | undefined;
}

function notificationsMetrics(registry: Registry) {
  const source = scrapeSource<Backlog>(registry, 'outbox_backlog');
  gaugeFrom(
    registry,
    source,
    { name: 'outbox_pending_messages', help: 'Order notifications not yet delivered' },
    (g, b) => g.set(b.pending),
  );
  gaugeFrom(
    registry,
    source,
    {
      name: 'outbox_oldest_pending_seconds',
      help: 'Age of the oldest undelivered order notification (0 when none)',
    },
    (g, b) => g.set(b.oldest_seconds),
  );
  const attempts = counter(registry, {
    name: 'outbox_delivery_attempts_total',
    help: 'Attempts to deliver an order notification, by outcome (delivered = 2xx)',
    labelNames: ['outcome'] as const,
  });
  return { source, attempts };
}

/**
 * Without `ORDERS_WEBHOOK_URL` there is no relay: messages stay in the outbox, visible as backlog, and are all
 * delivered, in order, once a URL is configured. Configuration refuses a URL without a `whsec_` secret:
 * notifications are never sent unsigned.
 */
export function createNotificationsModule(deps: NotificationsDeps) {
  const metrics = notificationsMetrics(deps.registry);
  metrics.source.collectWith(() => backlog(deps.db));
  const target = deps.ordersWebhook;
  return defineModule({
    name: 'notifications',
    backlog: () => backlog(deps.db),
    workers: () =>
      target
        ? [
            createOutboxRelay({
              db: deps.db,
              url: target.url,
              secret: target.secret,
              onAttempt: (outcome) => metrics.attempts.inc({ outcome }),
            }),
          ]
        : [],
  });
}

export type NotificationsModule = ReturnType<typeof createNotificationsModule>;
