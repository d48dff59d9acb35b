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
 * all delivered, in order, once a URL is configured. Configuration refuses a URL without a `whsec_`
 * `ORDERS_WEBHOOK_SECRET`: notifications are never sent unsigned.
 */
export function createNotificationsService(infra: Pick<Infra, 'db' | 'config' | 'metrics'>) {
  const { db, metrics } = infra;

  async function backlog(): Promise<Backlog> {
    const row = (await db.query<Backlog>(selectBacklog())).rows[0];
    return { pending: row?.pending ?? 0, oldest_seconds: row?.oldest_seconds ?? 0 };
  }

  metrics.outboxBacklog.collectWith(backlog);

  return {
    backlog,

    /**
     * The relay for the configured `ORDERS_WEBHOOK_URL`, or null when none is configured. Throws when the
     * secret's base64 part does not decode, so `serve` and `worker` fail at start.
     */
    relay(): Worker | null {
      const target = infra.config.ordersWebhook;
      if (!target) return null;
      return createOutboxRelay({
        db,
        url: target.url,
        secret: target.secret,
        onAttempt: (outcome) => metrics.outboxDeliveryAttempts.inc({ outcome }),
      });
    },
  };
}

export type NotificationsService = ReturnType<typeof createNotificationsService>;
