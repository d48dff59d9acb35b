/**
 * `npm run bench`: figures for the hot paths, each beside the machine's own ceiling measured in the same run
 * (a bare round trip on the same database), so a ratio says how much of the ceiling the service's own work
 * takes. Prints a table and writes bench/results/latest.json. Never run from tests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fromPglite } from '../src/adapters/pglite.js';
import { fromPg } from '../src/adapters/postgres.js';
import { migrate } from '../src/db/migrate.js';
import * as orders from '../src/modules/orders/index.js';
import type { Db } from '../src/ports/db.js';
import { randomBase62 } from '../src/shared/ids.js';
import { packageRoot } from '../src/shared/paths.js';
import { createTestContext } from '../test/helpers/app.js';
import type { Backend } from '../test/helpers/db.js';
import { postgresAvailable, TEST_DATABASE_URL } from '../test/helpers/services.js';
import {
  createOrderFor,
  deliveryHeaders,
  events,
  orderFixture,
  signed,
} from '../test/helpers/stripe-events.js';

interface Row {
  name: string;
  backend: string;
  ops: number;
  seconds: number;
  per_second: number;
  ceiling_per_second?: number;
  ratio?: number;
}

/** Runs `fn` `n` times, `concurrency` at a time, and returns operations per second. */
async function measure(n: number, concurrency: number, fn: (i: number) => Promise<unknown>) {
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { ops: n, seconds, per_second: n / seconds };
}

async function benchBackend(backend: string, db: Db, rows: Row[]) {
  await migrate(db);
  const concurrency = backend === 'pglite' ? 1 : 8;
  const ceiling = await measure(2000, concurrency, () => db.tx((q) => q.query('select 1')));
  rows.push({ name: 'ceiling: empty transaction', backend, ...ceiling });
  const run = randomBase62(6);
  const created = await measure(1000, concurrency, (i) =>
    db.tx((q) =>
      orders.createOrder(
        q,
        {
          id: `ord_bench_${run}_${i}`,
          currency: 'usd',
          amount_total: 5000,
          line_items: [{ name: 'x', unit_amount: 5000, quantity: 1 }],
        },
        'bench',
      ),
    ),
  );
  rows.push({
    name: 'order created (row + diff + outbox)',
    backend,
    ...created,
    ceiling_per_second: ceiling.per_second,
  });
  const paid = await measure(1000, concurrency, (i) =>
    db.tx(async (q) => {
      const order = await orders.lockOrder(q, `ord_bench_${run}_${i}`);
      if (order) await orders.changeOrder(q, order, { status: 'paid', amount_paid: 5000 }, 'bench');
    }),
  );
  rows.push({
    name: 'order paid (lock + diff + outbox)',
    backend,
    ...paid,
    ceiling_per_second: ceiling.per_second,
  });
}

const BENCH_SECRET = 'whsec_YmVuY2htYXJrLXNpZ25pbmctc2VjcmV0';

/**
 * The webhook hot path over real HTTP: verify, record in the inbox, apply (transition, diff, outbox) and
 * answer, for `checkout.session.completed` of distinct orders, and again for the same events delivered a
 * second time (the duplicate path). The ceiling is the same server answering `GET /healthz`.
 */
async function benchWebhooks(backend: Backend, rows: Row[]) {
  const ctx = await createTestContext(backend, {
    listen: true,
    env: { STRIPE_WEBHOOK_SECRET: BENCH_SECRET },
  });
  try {
    const concurrency = 8;
    const ceiling = await measure(2000, concurrency, () =>
      fetch(`${ctx.url}/healthz`).then((r) => r.arrayBuffer()),
    );
    rows.push({ name: 'ceiling: GET /healthz over HTTP', backend, ...ceiling });
    const fixtures = Array.from({ length: 400 }, () => orderFixture());
    for (const fx of fixtures) await createOrderFor(ctx.testDb.db, fx);
    const deliveries = fixtures.map((fx) => signed(events.completed(fx), BENCH_SECRET));
    const deliver = (i: number) => {
      const d = deliveries[i]!;
      return fetch(`${ctx.url}/webhooks/stripe`, {
        method: 'POST',
        headers: deliveryHeaders(d.header),
        body: d.payload,
      }).then(async (r) => {
        if (r.status !== 200) throw new Error(`webhook answered ${r.status}: ${await r.text()}`);
      });
    };
    const first = await measure(deliveries.length, concurrency, deliver);
    rows.push({
      name: 'webhook applied (new event)',
      backend,
      ...first,
      ceiling_per_second: ceiling.per_second,
    });
    const again = await measure(deliveries.length, concurrency, deliver);
    rows.push({
      name: 'webhook duplicate (already applied)',
      backend,
      ...again,
      ceiling_per_second: ceiling.per_second,
    });
  } finally {
    await ctx.close();
  }
}

async function main() {
  const rows: Row[] = [];
  await benchWebhooks('pglite', rows);
  const pglite = await fromPglite();
  await benchBackend('pglite', pglite, rows);
  await pglite.close();
  if (await postgresAvailable()) {
    const schema = `bench_${randomBase62(8).toLowerCase()}`;
    const admin = fromPg({ connectionString: TEST_DATABASE_URL });
    await admin.query(`create schema ${schema}`);
    const db = fromPg({ connectionString: TEST_DATABASE_URL, schema });
    try {
      await benchBackend('postgres', db, rows);
      await benchWebhooks('postgres', rows);
    } finally {
      await db.close();
      await admin.query(`drop schema ${schema} cascade`);
      await admin.close();
    }
  }
  for (const r of rows) if (r.ceiling_per_second) r.ratio = r.per_second / r.ceiling_per_second;
  console.table(
    rows.map((r) => ({
      benchmark: r.name,
      backend: r.backend,
      'ops/s': Math.round(r.per_second),
      'ceiling ops/s': r.ceiling_per_second ? Math.round(r.ceiling_per_second) : '',
      'of ceiling': r.ratio ? `${(r.ratio * 100).toFixed(1)}%` : '',
    })),
  );
  const out = join(packageRoot(), 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(
    join(out, 'latest.json'),
    `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cpus: cpus().length, rows }, null, 2)}\n`,
  );
}

await main();
