import type { Worker } from '../../workers/runner.js';
import type { IdempotencyService } from './idempotency.service.js';

/** Rows per delete: small enough that one batch never holds locks for long, large enough to keep up. */
const SWEEP_BATCH = 500;
/** Expired keys are harmless (a claim treats them as absent); sweeping each minute keeps the table near one day of keys. */
const SWEEP_IDLE_MS = 60_000;

/** Deletes `Idempotency-Key` rows past their 24 hours. */
export function createIdempotencySweeper(idempotency: IdempotencyService): Worker {
  return {
    name: 'idempotency-sweeper',
    idleMs: SWEEP_IDLE_MS,
    runOnce: () => idempotency.sweep(SWEEP_BATCH),
  };
}
