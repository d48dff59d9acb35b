import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';

/**
 * A background job that claims work from the database (`for update skip locked`), so any number of
 * processes may run the same worker without coordinating.
 */
export interface Worker {
  name: string;
  /** Pause between polls when the last run found nothing to do. */
  idleMs: number;
  /** Handles one batch; returns how many items it handled (0 = idle, so the loop sleeps). */
  runOnce(): Promise<number>;
}

export interface RunningWorkers {
  /** Asks every loop to stop and waits for its current batch to finish. */
  stop(): Promise<void>;
}

/** Runs each worker in its own loop. A failing batch is logged and retried after the idle pause. */
export function startWorkers(workers: Worker[], log: Logger): RunningWorkers {
  const controller = new AbortController();
  // Aborting ends the pause at once; the rejection that brings is the expected way out of the loop.
  const sleep = (ms: number) => delay(ms, undefined, { signal: controller.signal }).catch(() => {});
  const loops = workers.map(async (worker) => {
    while (!controller.signal.aborted) {
      let handled = 0;
      try {
        handled = await worker.runOnce();
      } catch (err) {
        log.warn({ err, worker: worker.name }, 'worker batch failed');
      }
      if (handled === 0) await sleep(worker.idleMs);
    }
  });
  return {
    async stop() {
      controller.abort();
      await Promise.all(loops);
    },
  };
}
