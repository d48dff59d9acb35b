import type { Db, Queryable } from '../ports/db.js';
import { type RetryPolicy, retryDelayMs } from '../shared/backoff.js';
import { errorMessage } from '../shared/errors.js';
import type { Worker } from './jobs.runner.js';
import { claimDue, type QueueTable, reschedule } from './jobs.sql.js';

/**
 * The one background-job mechanism for work kept in a module's own table (the inbox, the outbox, calls to
 * Stripe). The owning module describes its table; this file holds what every queue does the same way:
 *
 * - **claim with a lease**: `for update skip locked` picks due rows, and the same statement counts the try
 *   (`attempts + 1`) and pushes `next_attempt_at` out by the lease, so other workers leave the row alone
 *   while this one works on it, and a worker that dies just lets the lease run out;
 * - **retry with backoff and jitter**, fenced by the try number: only the claim that made a try may record
 *   its failure, so a worker whose lease ran out and was taken over cannot undo the newer try's schedule;
 * - **dead-letter at a limit**: past `maxAttempts` tries the owner's dead-letter statement settles the row.
 *
 * Times come from the database's clock, so workers on hosts whose clocks disagree still agree on what is due.
 */

/** How the tries of one row are spaced, and after how many the row is a dead letter. */
export interface QueuePolicy extends RetryPolicy {
  /** Tries after which a failing row is dead-lettered; absent, it is retried for ever. */
  maxAttempts?: number;
}

/** What every claimed row carries: the try number this claim holds. */
export interface Claimed {
  attempts: number;
}

/** The try failed (or must wait): `retry` when it is scheduled again, `dead` when it was the last one. */
export type RetryVerdict = 'retry' | 'dead';

/**
 * What comes after try `attempts` of a row that did not settle it: the next try after the policy's backoff,
 * or, at the limit, none (the row is a dead letter). The one rule every queue follows; `retryLater` applies
 * it, and an owner that writes its own status with the schedule (the inbox deferring an event) asks it here.
 */
export function nextTry(
  policy: QueuePolicy,
  attempts: number,
  random: () => number = Math.random,
): { verdict: 'retry'; delayMs: number } | { verdict: 'dead' } {
  if (policy.maxAttempts !== undefined && attempts >= policy.maxAttempts) return { verdict: 'dead' };
  return { verdict: 'retry', delayMs: retryDelayMs(Math.max(1, attempts), policy, random) };
}

/**
 * Records that try `attempts` of `key` did not settle it: schedules the next try, or, at the limit,
 * dead-letters the row with `deadLetterReason`. `error` is kept as `last_error` (null when the row is merely
 * waiting for something). Both are fenced by the try number. Runs in the caller's transaction when given one.
 */
export async function retryLater(
  q: Queryable,
  queue: QueueTable,
  policy: QueuePolicy,
  job: { key: string; attempts: number },
  failure: { error: string | null; deadLetterReason: string },
  random: () => number = Math.random,
): Promise<RetryVerdict> {
  const next = nextTry(
    queue.deadLetter ? policy : { ...policy, maxAttempts: undefined },
    job.attempts,
    random,
  );
  if (next.verdict === 'dead') {
    await q.query(queue.deadLetter!(job.key, job.attempts, failure.deadLetterReason, failure.error));
    return 'dead';
  }
  await q.query(reschedule(queue, job.key, job.attempts, next.delayMs, failure.error));
  return 'retry';
}

export interface QueueWorkerOptions<J extends Claimed> {
  name: string;
  db: Db;
  queue: QueueTable;
  policy: QueuePolicy;
  /** Rows per claim: small enough that the batch ends well inside its lease. */
  batchSize: number;
  /** How long a claim keeps others off a row: longer than one row's work can take. */
  leaseMs: number;
  /** The pause between polls that found nothing due. */
  idleMs: number;
  /** Work on the rows of one claim in parallel (different orders' notifications) or one after another. */
  parallel?: boolean;
  keyOf(job: J): string;
  /**
   * Does the work of one claimed row and records its success in the owner's table. Throwing means "not
   * done": the row is retried (or dead-lettered) with the error's message as its `last_error`.
   */
  run(job: J): Promise<void>;
  random?: () => number;
}

/**
 * A worker that drains one queue table: claim a batch, run each row, retry what threw. A failure to record a
 * result leaves the row leased, so it is claimed again once the lease runs out: at least once, never lost.
 */
export function queueWorker<J extends Claimed>(opts: QueueWorkerOptions<J>): Worker {
  async function runOne(job: J): Promise<void> {
    try {
      await opts.run(job);
    } catch (err) {
      await retryLater(
        opts.db,
        opts.queue,
        opts.policy,
        { key: opts.keyOf(job), attempts: job.attempts },
        { error: errorMessage(err), deadLetterReason: `retry limit reached: ${errorMessage(err)}` },
        opts.random,
      );
    }
  }
  return {
    name: opts.name,
    idleMs: opts.idleMs,
    async runOnce() {
      const { rows } = await opts.db.query<J>(claimDue(opts.queue, opts.batchSize, opts.leaseMs));
      if (opts.parallel) {
        const settled = await Promise.allSettled(rows.map(runOne));
        const failure = settled.find((s) => s.status === 'rejected');
        if (failure) throw failure.reason;
      } else {
        for (const row of rows) await runOne(row);
      }
      return rows.length;
    },
  };
}
