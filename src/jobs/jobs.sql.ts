import type { Sql } from '../ports/db.js';

/**
 * The statements of the job mechanism. Queue statements name no table of their own: the owning module's
 * QueueTable supplies it. `periodic_jobs` is the one table the mechanism owns.
 */

/**
 * A module's queue table, as the statements below need it described. Every queue table has the columns
 * `attempts` (tries started, the current one included), `next_attempt_at` (when the row may next be claimed;
 * while claimed, when its lease ends) and `last_error`.
 */
export interface QueueTable {
  /** The owner's table. */
  table: string;
  /** Its primary key column. */
  key: string;
  /** A condition on alias `job` for rows that still have work; claims and retries touch only these. */
  open: string;
  /** A further condition on alias `job` a row must meet to be claimed (the outbox's head-of-order rule). */
  claimable?: string;
  /** What a claim returns, as columns of alias `job`. */
  returning: string;
  /**
   * Settles a row whose try `attempts` was the last, so that nothing works on it any more; fenced like a
   * retry (only while the row is still on that try), with the try's error as `last_error`. Absent: the queue
   * never gives up (order notifications, whose later messages wait behind the earlier ones).
   */
  deadLetter?: (key: string, attempts: number, reason: string, error: string | null) => Sql;
}

const ms = (param: string) => `now() + ${param}::integer * interval '1 millisecond'`;

/** Claims up to `limit` due rows, oldest due first. */
export const claimDue = (queue: QueueTable, limit: number, leaseMs: number): Sql => ({
  text: `update ${queue.table} job
            set attempts = job.attempts + 1, next_attempt_at = ${ms('$2')}
          where job.${queue.key} in (
                  select job.${queue.key} from ${queue.table} job
                   where ${queue.open} and job.next_attempt_at <= now()
                         ${queue.claimable ? `and ${queue.claimable}` : ''}
                   order by job.next_attempt_at
                   limit $1::integer
                     for update skip locked)
      returning ${queue.returning}`,
  values: [limit, leaseMs],
});

/**
 * Claims one row by key, if it is open and due: a redelivered webhook does the work itself instead of
 * waiting for a worker. No row when someone else holds its lease or nothing is left to do.
 */
export const claimOne = (queue: QueueTable, key: string, leaseMs: number): Sql => ({
  text: `update ${queue.table} job
            set attempts = job.attempts + 1, next_attempt_at = ${ms('$2')}
          where job.${queue.key} = $1 and ${queue.open} and job.next_attempt_at <= now()
      returning ${queue.returning}`,
  values: [key, leaseMs],
});

/** The next try of a row whose try `attempts` failed; fenced, so only that try's claim may set it. */
export const reschedule = (
  queue: QueueTable,
  key: string,
  attempts: number,
  delayMs: number,
  error: string | null,
): Sql => ({
  text: `update ${queue.table} job set next_attempt_at = ${ms('$3')}, last_error = $4
          where job.${queue.key} = $1 and job.attempts = $2::integer and ${queue.open}`,
  values: [key, attempts, delayMs, error],
});

/** Makes sure the job has its row; the first instance to start creates it, due at once. */
export const ensurePeriodicJob = (name: string): Sql => ({
  text: `insert into periodic_jobs (name) values ($1) on conflict (name) do nothing`,
  values: [name],
});

/**
 * Starts a run when the job is due, for exactly one of the instances asking: the row lock makes the others
 * wait, and they then find next_run_at moved past now. The lease keeps the job from starting again while
 * this run is under way; a run that dies simply lets it run out. `runs` numbers the run, and fences its end.
 */
export const startPeriodicRun = (name: string, leaseMs: number): Sql => ({
  text: `update periodic_jobs
            set next_run_at = ${ms('$2')}, started_at = now(), runs = runs + 1
          where name = $1 and next_run_at <= now()
      returning runs, started_at, last_success_started_at`,
  values: [name, leaseMs],
});

/** Run number `run` succeeded: the next is due one period after it started, and its window begins there. */
export const finishPeriodicRun = (name: string, run: number, everyMs: number): Sql => ({
  text: `update periodic_jobs
            set next_run_at = started_at + $3::integer * interval '1 millisecond',
                last_success_started_at = started_at, last_error = null
          where name = $1 and runs = $2::bigint`,
  values: [name, run, everyMs],
});

/** Run number `run` failed: the job is tried again after `retryMs`, over the window that run had. */
export const failPeriodicRun = (name: string, run: number, retryMs: number, error: string): Sql => ({
  text: `update periodic_jobs set next_run_at = ${ms('$3')}, last_error = $4
          where name = $1 and runs = $2::bigint`,
  values: [name, run, retryMs, error],
});
