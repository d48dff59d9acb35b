/**
 * Background work: one mechanism for queues kept in a module's own table (claim with a lease, retry with
 * backoff and jitter, dead-letter at a limit), periodic jobs that run once per period across all instances,
 * and the loops that run them in `serve` and `worker`.
 */
export { type PeriodicJob, periodicWorker } from './jobs.periodic.js';
export {
  type Claimed,
  nextTry,
  type QueuePolicy,
  type QueueWorkerOptions,
  queueWorker,
  type RetryVerdict,
  retryLater,
} from './jobs.queue.js';
export { type RunningWorkers, startWorkers, type Worker } from './jobs.runner.js';
export { claimOne, type QueueTable } from './jobs.sql.js';
