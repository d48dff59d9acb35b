import type { Db } from '../ports/db.js';
import { errorMessage } from '../shared/errors.js';
import type { Worker } from './jobs.runner.js';
import { ensurePeriodicJob, failPeriodicRun, finishPeriodicRun, startPeriodicRun } from './jobs.sql.js';

/**
 * A job that runs once per period across all instances (DESIGN §1: more machines, no coordination code).
 * Every instance asks PostgreSQL whether the job is due; the one whose update starts the run does it, the
 * others find it already started. The schedule and the window live in `periodic_jobs`, so a restart neither
 * runs the job again early nor forgets where the last run left off.
 */
export interface PeriodicJob {
  name: string;
  /** The period: a run starts this long after the previous successful one started. */
  everyMs: number;
  /** Longer than a run can take: until then no other instance starts the job. */
  leaseMs: number;
  /** After a failed run, the next try comes this soon. */
  retryMs: number;
  /**
   * One run. `previousStart` is when the last successful run started (null before the first ever), so a job
   * that covers a window of time (reconciliation) continues from there.
   */
  run(window: { previousStart: Date | null; startedAt: Date }): Promise<void>;
}

/** How often each instance asks whether a periodic job is due: one indexed update, negligible load. */
const CHECK_EVERY_MS = 30_000;

/** Runs `job` when it is due. `checkEveryMs` is how often this instance asks (tests ask more often). */
export function periodicWorker(db: Db, job: PeriodicJob, checkEveryMs = CHECK_EVERY_MS): Worker {
  let ensured = false;
  return {
    name: job.name,
    idleMs: Math.min(checkEveryMs, job.everyMs),
    async runOnce() {
      if (!ensured) {
        await db.query(ensurePeriodicJob(job.name));
        ensured = true;
      }
      const started = (
        await db.query<{ runs: number; started_at: Date; last_success_started_at: Date | null }>(
          startPeriodicRun(job.name, job.leaseMs),
        )
      ).rows[0];
      if (!started) return 0;
      try {
        await job.run({ previousStart: started.last_success_started_at, startedAt: started.started_at });
      } catch (err) {
        await db.query(failPeriodicRun(job.name, started.runs, job.retryMs, errorMessage(err)));
        throw err;
      }
      await db.query(finishPeriodicRun(job.name, started.runs, job.everyMs));
      // A run is never "more work waiting": the loop sleeps until the next check.
      return 0;
    },
  };
}
