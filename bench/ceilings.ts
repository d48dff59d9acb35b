/**
 * The machine's own ceilings, measured in the same run as the service: H, a bare HTTP server that only
 * verifies signatures; D, pgbench running one event-shaped transaction on our own tables.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fromPg } from '../src/adapters/postgres.js';
import { migrate } from '../src/db/migrate.js';
import { freePort } from '../test/helpers/cli.js';
import { events } from '../test/helpers/stripe-events.js';
import {
  BENCH_SECRET,
  benchIds,
  cpuSeconds,
  onCleanup,
  postgresCpu,
  postgresCpuDelta,
  ROOT,
  startProcess,
} from './common.js';
import type { LoadJob, LoadResult } from './load.js';
import { adminQuery, type LoadProcess, scratchDatabase } from './service.js';

export interface CeilingH {
  per_second: number;
  load: LoadResult;
  cpu_ms_per_request: number;
}

/** H: the bare verifying server, loaded closed-loop at `concurrency` with the same signed events. */
export async function ceilingH(load: LoadProcess, count: number, concurrency: number): Promise<CeilingH> {
  const port = await freePort();
  const server = await startProcess(
    'ceiling server',
    process.execPath,
    ['--import', 'tsx', join(ROOT, 'bench', 'ceiling-server.ts')],
    { PORT: String(port), STRIPE_WEBHOOK_SECRET: BENCH_SECRET },
    /listening on/,
  );
  try {
    const job: LoadJob = {
      kind: 'webhooks',
      targets: [`http://127.0.0.1:${port}`],
      secret: BENCH_SECRET,
      event: 'completed',
      prefix: 'ceil',
      from: 0,
      count,
      mode: { loop: 'closed', concurrency },
    };
    // A first pass warms the JIT of both processes.
    await load.run({ ...job, count: Math.min(count, 2000) });
    const cpu0 = cpuSeconds(server.child.pid ?? 0);
    const result = await load.run(job);
    const cpu = cpuSeconds(server.child.pid ?? 0) - cpu0;
    return { per_second: result.ack_per_second, load: result, cpu_ms_per_request: (cpu * 1000) / result.ok };
  } finally {
    await server.stop();
  }
}

export interface CeilingD {
  per_second: number;
  seconds: number;
  clients: number;
  postgres_cpu_ms_per_transaction: number;
  script: string;
}

const sqlText = (s: string) => `'${s.replaceAll("'", "''")}'`;

/** The pgbench script: inbox insert (on conflict do nothing), the order's update, its outbox message. */
function pgbenchScript(orders: number): string {
  const event = JSON.stringify(events.completed(benchIds('pgb', 1)));
  const message = JSON.stringify({
    type: 'order.paid',
    order_id: 'ord_pgb_1',
    changes: { status: ['awaiting_payment', 'paid'] },
  });
  return [
    `\\set o random(1, ${orders})`,
    '\\set e random(1, 1000000000000)',
    'begin;',
    `insert into stripe_events (id, type, livemode, stripe_created_at, payload, raw_payload, source, order_id) values ('evt_pgb_' || :e, 'checkout.session.completed', false, now(), ${sqlText(event)}::jsonb, ${sqlText(event)}, 'webhook', 'ord_pgb_' || :o) on conflict do nothing;`,
    `update orders set status = 'paid', amount_paid = amount_total, seq = seq + 1, updated_at = now() where id = 'ord_pgb_' || :o returning seq \\gset`,
    `insert into outbox (id, order_id, seq, type, payload) values ('msg_pgb_' || :e, 'ord_pgb_' || :o, :seq, 'order.paid', ${sqlText(message)}::jsonb);`,
    'commit;',
    '',
  ].join('\n');
}

/** D: pgbench, 32 clients on 2 threads for `seconds`, in a scratch database migrated with our migrations. */
export async function ceilingD(seconds: number, clients = 32): Promise<CeilingD> {
  const scratch = await scratchDatabase('ceiling');
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgbench-'));
  const removeDir = onCleanup('pgbench script', async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const db = fromPg({ connectionString: scratch.url, max: 2 });
    const orders = 20_000;
    try {
      await migrate(db);
      await db.query(
        `insert into orders (id, status, currency, amount_total, line_items, checkout_session_id, payment_intent_id)
         select 'ord_pgb_' || g, 'awaiting_payment', 'usd', 5000, '[{"name":"T-shirt","unit_amount":5000,"quantity":1}]',
                'cs_test_pgb_' || g, 'pi_pgb_' || g from generate_series(1, ${orders}) g`,
      );
    } finally {
      await db.close();
    }
    const script = pgbenchScript(orders);
    writeFileSync(join(dir, 'event.sql'), script);
    const url = new URL(scratch.url);
    const before = postgresCpu();
    const { stdout } = await promisify(execFile)('pgbench', [
      ...['-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username || 'postgres')],
      ...['-n', '-f', join(dir, 'event.sql'), '-c', String(clients), '-j', '2', '-T', String(seconds)],
      scratch.name,
    ]);
    const pgCpu = postgresCpuDelta(before, postgresCpu());
    const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? 'NaN');
    const done = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 'NaN');
    if (!Number.isFinite(tps)) throw new Error(`pgbench printed no tps: ${stdout}`);
    return {
      per_second: tps,
      seconds,
      clients,
      postgres_cpu_ms_per_transaction: (pgCpu * 1000) / done,
      script,
    };
  } finally {
    await removeDir();
    await scratch.drop();
  }
}

export async function postgresVersion(): Promise<string> {
  return (await adminQuery<{ version: string }>('select version()'))[0]?.version ?? 'unknown';
}
