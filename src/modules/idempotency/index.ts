import type { FastifyInstance } from 'fastify';
import { type PeriodicJob, periodicWorker } from '../../jobs/index.js';
import type { Db } from '../../ports/db.js';
import { defineModule } from '../module.js';
import { sweepExpiredKeys } from './idempotency.keys.js';
import { idempotencyPlugin } from './idempotency.plugin.js';

/**
 * `Idempotency-Key` on our own API (DESIGN §5, CONTRACT §3): a plugin that adds it to every POST route, and
 * the sweeper of keys past their 24 hours. Owns `idempotency_keys`.
 */
export {
  type Claim,
  claimKey,
  completeKey,
  type HeldKey,
  releaseKey,
  sweepExpiredKeys,
} from './idempotency.keys.js';

/** Rows per delete: small enough that one batch never holds locks for long, large enough to keep up. */
const SWEEP_BATCH = 500;

/**
 * Expired keys are harmless (a claim treats them as absent); sweeping once a minute, by one instance at a
 * time, keeps the table near one day of keys.
 */
const sweepJob = (db: Db): PeriodicJob => ({
  name: 'idempotency-sweeper',
  everyMs: 60_000,
  leaseMs: 5 * 60_000,
  retryMs: 60_000,
  async run() {
    while ((await sweepExpiredKeys(db, SWEEP_BATCH)) === SWEEP_BATCH);
  },
});

export function createIdempotencyModule(deps: { db: Db }) {
  return defineModule({
    name: 'idempotency',
    plugin: async (app: FastifyInstance) => {
      // Before any route: it adds Idempotency-Key handling to every POST route registered after it.
      await app.register(idempotencyPlugin, { db: deps.db });
    },
    workers: () => [periodicWorker(deps.db, sweepJob(deps.db))],
  });
}
