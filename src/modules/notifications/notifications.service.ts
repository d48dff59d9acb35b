import { Counter } from 'prom-client';
import type { Infra } from '../../compose.js';
import type { Worker } from '../../workers/runner.js';
import { createOutboxRelay } from './notifications.relay.js';
import { selectBacklog } from './notifications.sql.js';

export interface Backlog {
  /** Messages not yet delivered. */
  pending: number;
  /** Age of the oldest undelivered message, in seconds; 0 when nothing is pending. */
  oldest_seconds: number;
}

/**
 * Order notifications: the outbox's backlog (as metrics too) and the relay that empties it.
 *
 * Without `ORDERS_WEBHOOK_URL` there is no relay: messages stay in the outbox, visible as backlog, and are
 * all delivered, in order, once a URL is configured. A URL without `ORDERS_WEBHOOK_SECRET` is refused in
 * every environment (production already refuses it at configuration): notifications are never sent
 * unsigned, and a secret generated for the occasion would be one the receiver cannot know.
 */
export function createNotificationsService(infra: Pick<Infra, 'db' | 'config' | 'metrics'>) {
  const { db, metrics } = infra;

  async function backlog(): Promise<Backlog> {
    const row = (await db.query<Backlog>(selectBacklog())).rows[0];
    return { pending: row?.pending ?? 0, oldest_seconds: row?.oldest_seconds ?? 0 };
  }

  // Registered once per metrics registry: services may be built more than once on one infrastructure.
  const registered = (name: string) => metrics.registry.getSingleMetric(name) !== undefined;
  if (!registered('outbox_pending_messages')) {
    metrics.gauge('outbox_pending_messages', 'Order notifications not yet delivered', [], async (g) => {
      g.set((await backlog()).pending);
    });
  }
  if (!registered('outbox_oldest_pending_seconds')) {
    metrics.gauge(
      'outbox_oldest_pending_seconds',
      'Age of the oldest undelivered order notification (0 when none)',
      [],
      async (g) => {
        g.set((await backlog()).oldest_seconds);
      },
    );
  }
  const attempts =
    (metrics.registry.getSingleMetric('outbox_delivery_attempts_total') as Counter<'outcome'> | undefined) ??
    new Counter({
      name: 'outbox_delivery_attempts_total',
      help: 'Attempts to deliver an order notification, by outcome (delivered = 2xx)',
      labelNames: ['outcome'] as const,
      registers: [metrics.registry],
    });

  return {
    backlog,

    /**
     * The relay for the configured `ORDERS_WEBHOOK_URL`, or null when none is configured. Throws when the URL
     * has no secret, or the secret is not a usable `whsec_` secret, so `serve` and `worker` fail at start.
     */
    relay(): Worker | null {
      const { ordersWebhookUrl: url, ordersWebhookSecret: secret } = infra.config;
      if (!url) return null;
      if (!secret) {
        throw new Error(
          'ORDERS_WEBHOOK_URL is set without ORDERS_WEBHOOK_SECRET: order notifications are only sent signed',
        );
      }
      return createOutboxRelay({
        db,
        url,
        secret,
        onAttempt: (outcome) => attempts.inc({ outcome }),
      });
    },
  };
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;
