import type { Infra } from '../compose.js';
import { createAttemptsCompleter } from '../modules/attempts/attempts.service.js';
import { createIdempotencySweeper } from '../modules/idempotency/idempotency.worker.js';
import { reconciliationWorker, webhookRetryWorker } from '../modules/webhooks/webhooks.workers.js';
import type { Services } from '../services.js';
import type { Worker } from './runner.js';

/** Every background worker `serve` and `worker` run. Each module adds its own here. */
export function createWorkers(infra: Infra, services: Services): Worker[] {
  // No ORDERS_WEBHOOK_URL, no relay: notifications wait in the outbox (visible as backlog in /metrics).
  const outboxRelay = services.notifications.relay();
  const attemptsCompleter = createAttemptsCompleter(services.db, {
    checkout_session: services.checkout.complete,
    refund: services.refunds.complete,
  });
  return [
    ...(outboxRelay ? [outboxRelay] : []),
    attemptsCompleter,
    createIdempotencySweeper(services.idempotency),
    webhookRetryWorker(services.webhooks),
    reconciliationWorker(services.webhooks, infra.log),
  ];
}
