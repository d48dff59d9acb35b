/** The bench's printed table: the machine, the ceilings, each phase, the ratios and the targets. */
import type { PhaseResult } from './measure.js';
import type { Results } from './run.js';

const r0 = (n: number | null | undefined) => (n === null || n === undefined ? '' : Math.round(n));
const r2 = (n: number | null | undefined) => (n === null || n === undefined ? '' : Number(n.toFixed(2)));
const find = (results: Results, label: string) => results.phases.find((p) => p.label === label);

export interface Target {
  target: string;
  value: number | null;
  goal: string;
  met: boolean | null;
}

export function targets(results: Results): Target[] {
  const { H, combined } = results.ceilings;
  const one = find(results, 'new completions, 1 instance');
  const two = find(results, 'new completions, 2 instances');
  const dups = find(results, 'duplicates (same events again)');
  const open500 = find(results, 'open loop 500/s');
  const ratio = (a: number | null | undefined, b: number | undefined) => (a && b ? a / b : null);
  const t = (target: string, value: number | null, goal: string, ok: (v: number) => boolean): Target => ({
    target,
    value: value === null ? null : Number(value.toFixed(3)),
    goal,
    met: value === null ? null : ok(value),
  });
  return [
    t(
      'applied events/s ÷ combined ceiling',
      ratio(one?.applied_per_second, combined),
      '≥ 0.5',
      (v) => v >= 0.5,
    ),
    t('service CPU ms per applied event', one?.service_cpu_ms_per_event ?? null, '≤ 1', (v) => v <= 1),
    t('PostgreSQL CPU ms per applied event', one?.postgres_cpu_ms_per_event ?? null, '≤ 1', (v) => v <= 1),
    t('duplicates/s ÷ H', ratio(dups?.load.ack_per_second, H?.per_second), '≥ 0.8', (v) => v >= 0.8),
    t('ack p99 ms at 500 events/s', open500?.load.latency_ms.p99 ?? null, '< 50', (v) => v < 50),
    t(
      'affiliate month report p99 ms',
      results.reports?.affiliate_month_ms.p99 ?? null,
      '< 50',
      (v) => v < 50,
    ),
    t('admin month report ms', results.reports?.admin_month_ms.p50 ?? null, '< 1000', (v) => v < 1000),
    t(
      'audit verify entries/s',
      results.reports?.audit_verify.entries_per_second ?? null,
      '≥ 200000',
      (v) => v >= 200_000,
    ),
    t(
      'applied/s, 2 instances ÷ 1 instance',
      ratio(two?.applied_per_second, one?.applied_per_second ?? undefined),
      '> 1',
      (v) => v > 1,
    ),
  ];
}

const errorsOf = (p: PhaseResult) =>
  Object.entries(p.load.errors)
    .map(([s, n]) => `${s}×${n}`)
    .join(' ');
const answersOf = (p: PhaseResult) =>
  Object.entries(p.load.answers)
    .map(([s, n]) => `${s} ${n}`)
    .join(', ');

export function printResults(results: Results) {
  const m = results.machine;
  console.log(
    `\n${m.cpus} × ${m.cpu_model}, ${m.memory_gib} GiB, Node ${m.node}, ${m.postgres.split(' on ')[0]}, ` +
      `load average at start ${m.load_average_at_start.join(' ')}`,
  );
  console.log(`${results.command}, ${results.at}\n`);
  const { H, D, combined } = results.ceilings;
  if (H && D) {
    console.table({
      'H: bare verifying node:http server': {
        'per second': r0(H.per_second),
        note: `${r2(H.cpu_ms_per_request)} ms CPU/request, p99 ${r2(H.load.latency_ms.p99)} ms`,
      },
      'D: pgbench event transaction, 32 clients': {
        'per second': r0(D.per_second),
        note: `${r2(D.postgres_cpu_ms_per_transaction)} ms PostgreSQL CPU/transaction`,
      },
      'combined 1/(1/H + 1/D)': { 'per second': r0(combined), note: '' },
    });
  }
  if (results.phases.length) {
    console.table(
      results.phases.map((p) => ({
        phase: p.label,
        'ack/s': r0(p.load.ack_per_second),
        'p50 ms': r2(p.load.latency_ms.p50),
        'p99 ms': r2(p.load.latency_ms.p99),
        'max ms': r0(p.load.latency_ms.max),
        errors: errorsOf(p),
        'applied/s': r0(p.applied_per_second),
        'of ceiling': combined && p.applied_per_second ? r2(p.applied_per_second / combined) : '',
        'svc CPU ms/ev': r2(p.service_cpu_ms_per_event),
        'pg CPU ms/ev': r2(p.postgres_cpu_ms_per_event),
        'peak MiB': r0(p.peak_memory_mib),
      })),
    );
    for (const p of results.phases) console.log(`  ${p.label}: answers ${answersOf(p)}`);
  }
  const one = find(results, 'new completions, 1 instance');
  if (one?.per_event) {
    const e = one.per_event;
    console.log(
      `\nper new completion (1 instance): ${e.transactions} PostgreSQL transactions, ${e.redis_commands} Redis commands`,
    );
    console.log(
      `  Redis: ${Object.entries(e.redis)
        .map(([c, n]) => `${c} ${n}`)
        .join(', ')}`,
    );
    console.log(
      `  rows: ${Object.entries(e.rows)
        .map(([t, v]) => `${t} (${v})`)
        .join('; ')}`,
    );
  }
  const c = results.checkout;
  if (c) {
    console.table({
      'POST /v1/checkout/sessions (service)': {
        'per second': r0(c.service.ack_per_second),
        'p99 ms': r2(c.service.latency_ms.p99),
        errors: Object.entries(c.service.errors)
          .map(([s, n]) => `${s}×${n}`)
          .join(' '),
        'service CPU ms': r2(c.service_cpu_ms_per_session),
        'emulator CPU ms': r2(c.emulator_cpu_ms_per_session),
      },
      'sessions.create at the emulator (bare)': {
        'per second': r0(c.bare.ack_per_second),
        'p99 ms': r2(c.bare.latency_ms.p99),
        errors: Object.entries(c.bare.errors)
          .map(([s, n]) => `${s}×${n}`)
          .join(' '),
        'service CPU ms': '',
        'emulator CPU ms': r2(c.bare_emulator_cpu_ms_per_session),
      },
      'ratio service ÷ bare': {
        'per second': r2(c.ratio),
        'p99 ms': '',
        errors: '',
        'service CPU ms': '',
        'emulator CPU ms': '',
      },
    });
  }
  console.table(
    targets(results).map((t) => ({
      target: t.target,
      value: t.value ?? 'not run',
      goal: t.goal,
      met: t.met === null ? '' : t.met ? 'yes' : 'NO',
    })),
  );
}
