/**
 * `npm run bench [-- --quick] [-- --only ceilings,webhooks,open-loop,instances,pglite,checkout,reports]`: the machine's
 * own ceilings and the service, measured in one run with the load generator in its own process, printed as
 * ratios and written to bench/results/latest.json. Everything it starts it stops, and its scratch databases
 * are dropped, on error and on Ctrl-C too. Never run from tests. See docs/performance.md.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { type CeilingD, type CeilingH, ceilingD, ceilingH, postgresVersion } from './ceilings.js';
import { cleanupAll, ROOT } from './common.js';
import type { PhaseResult } from './measure.js';
import { REPORT_SCALE, type ReportsResult, reports } from './reports.js';
import {
  type CheckoutResult,
  checkout,
  type Env,
  newEvents,
  openLoop,
  pglite,
  webhooks,
} from './scenarios.js';
import { adminQuery, privateRedis, startLoad, stripeEmulator } from './service.js';
import { printResults, targets } from './table.js';

const SCENARIOS = [
  'ceilings',
  'webhooks',
  'open-loop',
  'instances',
  'pglite',
  'checkout',
  'reports',
] as const;
type Scenario = (typeof SCENARIOS)[number];

function options(argv: string[]) {
  const quick = argv.includes('--quick');
  const i = argv.indexOf('--only');
  const only = i >= 0 ? (argv[i + 1] ?? '').split(',').filter(Boolean) : [...SCENARIOS];
  const unknown = only.filter((s) => !(SCENARIOS as readonly string[]).includes(s));
  if (unknown.length)
    throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`);
  const chosen = new Set(only as Scenario[]);
  // Every webhook figure is a ratio to the ceilings, so they run whenever one of those does.
  if (['webhooks', 'open-loop', 'instances', 'pglite'].some((s) => chosen.has(s as Scenario)))
    chosen.add('ceilings');
  return {
    quick,
    chosen,
    counts: quick
      ? { events: 1000, checkout: 200, openSeconds: 2, rates: [250, 500, 1000], pgbenchSeconds: 3 }
      : { events: 20_000, checkout: 2000, openSeconds: 10, rates: [250, 500, 1000], pgbenchSeconds: 20 },
  };
}

/** The serve processes run the built CLI: rebuild it when a source file is newer than dist. */
function ensureBuilt() {
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, e) => {
      const p = join(dir, e.name);
      return Math.max(m, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
    }, 0);
  let built = 0;
  try {
    built = statSync(join(ROOT, 'dist', 'src', 'main.js')).mtimeMs;
  } catch {}
  if (Math.max(newest(join(ROOT, 'src')), newest(join(ROOT, 'stripe-emulator'))) > built) {
    console.log('bench: building dist (src is newer)');
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      {
        cwd: ROOT,
        stdio: 'inherit',
      },
    );
  }
}

async function machine() {
  const preload = (
    await adminQuery<{ s: string }>('select current_setting($$shared_preload_libraries$$) as s')
  )[0]?.s;
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: Number((totalmem() / 2 ** 30).toFixed(1)),
    node: process.version,
    postgres: await postgresVersion(),
    pg_stat_statements_loaded: (preload ?? '').includes('pg_stat_statements'),
    load_average_at_start: loadavg().map((l) => Number(l.toFixed(2))),
  };
}

export interface Results {
  at: string;
  command: string;
  machine: Awaited<ReturnType<typeof machine>>;
  ceilings: { H?: CeilingH; D?: CeilingD; combined?: number };
  phases: PhaseResult[];
  checkout?: CheckoutResult;
  reports?: ReportsResult;
}

async function run(opts: ReturnType<typeof options>, results: Results) {
  const { chosen, counts } = opts;
  if (chosen.size === 1 && chosen.has('reports')) {
    console.log('bench: reports');
    results.reports = await reports(opts.quick ? REPORT_SCALE.quick : REPORT_SCALE.full);
    return;
  }
  const load = await startLoad();
  if (chosen.has('ceilings')) {
    console.log('bench: ceiling H (bare verifying HTTP server)');
    results.ceilings.H = await ceilingH(load, counts.events, 32);
    console.log(`bench: ceiling D (pgbench, ${counts.pgbenchSeconds} s)`);
    results.ceilings.D = await ceilingD(counts.pgbenchSeconds);
    const { H, D } = results.ceilings;
    results.ceilings.combined = 1 / (1 / H.per_second + 1 / D.per_second);
  }
  const env: Env = { load, redis: await privateRedis(), emulator: await stripeEmulator(), counts };
  const step = async <T>(name: Scenario, fn: () => Promise<T>) => {
    if (!chosen.has(name)) return undefined;
    console.log(`bench: ${name}`);
    return fn();
  };
  results.phases.push(...((await step('webhooks', () => webhooks(env))) ?? []));
  results.phases.push(...((await step('open-loop', () => openLoop(env))) ?? []));
  await step('instances', async () => {
    const from = results.phases.some((p) => p.label === 'new completions, 1 instance') ? 2 : 1;
    for (let n = from; n <= 3; n++) results.phases.push(await newEvents(env, n));
  });
  const lite = await step('pglite', () => pglite(env));
  if (lite) results.phases.push(lite);
  results.checkout = await step('checkout', () => checkout(env));
  results.reports = await step('reports', () => reports(opts.quick ? REPORT_SCALE.quick : REPORT_SCALE.full));
}

async function main() {
  const opts = options(process.argv.slice(2));
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      console.error(`bench: ${signal}, stopping everything it started`);
      void cleanupAll().finally(() => process.exit(130));
    });
  }
  ensureBuilt();
  const results: Results = {
    at: new Date().toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
    machine: await machine(),
    ceilings: {},
    phases: [],
  };
  try {
    await run(opts, results);
  } finally {
    await cleanupAll();
  }
  printResults(results);
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'latest.json'),
    `${JSON.stringify({ ...results, targets: targets(results) }, null, 2)}\n`,
  );
  console.log('bench: wrote bench/results/latest.json');
}

main().catch(async (err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  await cleanupAll();
  process.exit(1);
});
