import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/shared/paths.js';

/** What the bench's deliveries are signed with, by the load process, and checked with, by the service. */
export const BENCH_SECRET = 'whsec_YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0';
export const ROOT = packageRoot();
export const CLI = join(ROOT, 'bin', 'payments-service.js');
export const PG_ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The ids of the i-th bench order of a run's prefix: the driver seeds them, the load sends their events. */
export const benchIds = (prefix: string, i: number) => ({
  id: `ord_${prefix}_${i}`,
  amount: 5000,
  currency: 'usd',
  sessionId: `cs_test_${prefix}_${i}`,
  paymentIntentId: `pi_${prefix}_${i}`,
  chargeId: `ch_${prefix}_${i}`,
});

/** Everything the bench starts, stopped in reverse order at the end, on error and on Ctrl-C. */
const cleanups: Array<{ name: string; fn: () => Promise<unknown> }> = [];
export function onCleanup(name: string, fn: () => Promise<unknown>): () => Promise<void> {
  const entry = { name, fn };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    await fn().catch((err) => console.error(`bench: stopping ${name} failed: ${err}`));
  };
}
export async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const entry = cleanups.pop()!;
    await entry.fn().catch((err) => console.error(`bench: stopping ${entry.name} failed: ${err}`));
  }
}

/** A child process whose stdout is watched for a line; stopped (SIGTERM, then SIGKILL) at cleanup. */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<{ child: ChildProcess; stop: () => Promise<void>; output: () => string }> {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const stop = onCleanup(name, () => stopChild(child));
  const deadline = Date.now() + 30_000;
  while (!ready.test(out)) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}): ${out.slice(-2000)}`);
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} not ready in 30 s: ${out.slice(-2000)}`);
    }
    await sleep(50);
  }
  return { child, stop, output: () => out };
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** utime + stime of a process in seconds (clock ticks of 1/100 s, Linux's USER_HZ), 0 when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Every process whose comm is `postgres`, with its CPU seconds so far. */
export function postgresCpu(): Map<number, number> {
  const found = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'postgres')
        found.set(Number(entry), cpuSeconds(Number(entry)));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** CPU seconds the postgres processes spent between two snapshots (new processes count from 0). */
export function postgresCpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, s] of after) total += s - (before.get(pid) ?? 0);
  return total;
}

/** Peak resident memory (VmHWM) of a process, in MiB. */
export function peakMemoryMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
