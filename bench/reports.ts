/**
 * The reports at scale: commissions and clicks over thousands of affiliates loaded by `generate_series`, then,
 * through one `serve` over HTTP as a client would ask: an affiliate's month report (p50/p99), the admin's
 * month report, CSV exports of two sizes with the serve process's memory sampled while they stream (flat
 * memory means the larger export costs no more than the smaller), and `audit verify` over hash-chained
 * entries written as the audit module writes them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { fromPg } from '../src/adapters/postgres.js';
import { migrate } from '../src/db/migrate.js';
import { entryHash, GENESIS_HASH, type HashedEntry } from '../src/modules/audit/audit.chain.js';
import { CLI, percentile, ROOT, sleep } from './common.js';
import { adminKey, scratchDatabase, startServe } from './service.js';

export interface ReportScale {
  commissions: number;
  affiliates: number;
  clicks: number;
  auditEntries: number;
}

export const REPORT_SCALE = {
  full: { commissions: 10_000_000, affiliates: 10_000, clicks: 2_000_000, auditEntries: 1_000_000 },
  quick: { commissions: 200_000, affiliates: 2000, clicks: 50_000, auditEntries: 50_000 },
} satisfies Record<string, ReportScale>;

/** The year the loaded commissions are spread over, evenly, each affiliate in turn. */
const SPAN_START = '2025-12-01';
const SPAN_DAYS = 365;
const MONTH = { from: '2026-06-01', to: '2026-06-30' };

const affiliateId = (i: number) => `aff_b${String(i).padStart(6, '0')}`;

async function load(client: pg.Client, scale: ReportScale): Promise<{ seconds: number; table_mib: number }> {
  const started = performance.now();
  await client.query(
    `insert into affiliates (id, name, email, email_key, terms)
     select 'aff_b' || lpad(i::text, 6, '0'), 'Affiliate ' || i, 'a' || i || '@bench.example',
            'a' || i || '@bench.example', '{"type": "percent", "basis_points": 1000}'
       from generate_series(1, $1) i`,
    [scale.affiliates],
  );
  // One usd sale in ten is jpy instead; one in ten is half refunded, one in fifty fully; statuses in turn.
  const chunk = 1_000_000;
  for (let from = 1; from <= scale.commissions; from += chunk) {
    await client.query(
      `insert into commissions (id, order_id, affiliate_id, code, currency, base_amount, amount, reversed_amount,
                                terms, status, hold_until, created_at, updated_at)
       select 'com_b' || i, 'ord_b' || i, 'aff_b' || lpad((1 + i % $3)::text, 6, '0'), 'BENCH', currency, base,
              base / 10, reversed, '{"type": "percent", "basis_points": 1000}',
              status,
              -- A pending commission waits out its hold, so the approval job of the serve finds nothing to do.
              case when status = 'pending' then now() + interval '30 days' else at + interval '30 days' end, at, at
         from (select *, case when reversed = base / 10 then 'reversed'
                              else (array['pending', 'approved', 'paid', 'on_hold', 'pending', 'paid',
                                          'approved'])[1 + i % 7] end as status
         from (select i, case when i % 10 = 4 then 'jpy' else 'usd' end as currency,
                      1000 + (i * 7919) % 99000 as base,
                      case when i % 50 = 7 then (1000 + (i * 7919) % 99000) / 10
                           when i % 10 = 3 then (1000 + (i * 7919) % 99000) / 20 else 0 end as reversed,
                      $4::timestamptz + (i::double precision / $5) * interval '${SPAN_DAYS} days' as at
                 from generate_series($1::bigint, $2::bigint) i) s) t`,
      [from, Math.min(scale.commissions, from + chunk - 1), scale.affiliates, SPAN_START, scale.commissions],
    );
    console.log(`bench: reports: ${Math.min(scale.commissions, from + chunk - 1)} commissions loaded`);
  }
  await client.query(
    `insert into referral_clicks (code, affiliate_id, at)
     select 'BENCH', 'aff_b' || lpad((1 + (i * 31) % $2)::text, 6, '0'),
            $3::timestamptz + (i::double precision / $1) * interval '${SPAN_DAYS} days'
       from generate_series(1, $1) i`,
    [scale.clicks, scale.affiliates, SPAN_START],
  );
  await client.query('vacuum analyze commissions, referral_clicks, affiliates');
  const size = await client.query<{ b: string }>(`select pg_total_relation_size('commissions') as b`);
  return { seconds: (performance.now() - started) / 1000, table_mib: Number(size.rows[0]!.b) / 2 ** 20 };
}

/** `n` entries over `streams` affiliate chains, hashed as the audit module hashes them, in batches. */
async function loadAudit(client: pg.Client, n: number, streams: number): Promise<void> {
  const heads = Array.from({ length: streams }, () => ({ seq: 0, hash: GENESIS_HASH }));
  const at = new Date('2026-06-01T00:00:00Z').toISOString();
  const names = heads.map((_, s) => `affiliate:${affiliateId(s + 1)}`);
  await client.query(
    `insert into audit_streams (stream, last_seq, last_hash) select unnest($1::text[]), 0, $2`,
    [names, GENESIS_HASH],
  );
  for (let done = 0; done < n; ) {
    const batch: Array<HashedEntry & { hash: string }> = [];
    for (; batch.length < 10_000 && done < n; done++) {
      const s = done % streams;
      const head = heads[s]!;
      const e: HashedEntry = {
        stream: names[s]!,
        seq: head.seq + 1,
        at,
        actor: 'bench',
        action: 'commission.accrued',
        entity_type: 'commission',
        entity_id: `com_b${done}`,
        data: { amount: 100 + (done % 900), currency: 'usd' },
        prev_hash: head.hash,
      };
      const hash = entryHash(e);
      batch.push({ ...e, hash });
      heads[s] = { seq: e.seq, hash };
    }
    await client.query(
      `insert into audit_entries (stream, seq, at, actor, action, entity_type, entity_id, data, prev_hash, hash)
       select * from unnest($1::text[], $2::bigint[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
                            $7::text[], $8::jsonb[], $9::text[], $10::text[])`,
      ['stream', 'seq', 'at', 'actor', 'action', 'entity_type', 'entity_id', 'data', 'prev_hash', 'hash'].map(
        (k) => batch.map((e) => (k === 'data' ? JSON.stringify(e.data) : e[k as keyof typeof e])),
      ),
    );
  }
  await client.query(
    `update audit_streams s set last_seq = h.seq, last_hash = h.hash
       from unnest($1::text[], $2::bigint[], $3::text[]) as h (stream, seq, hash) where s.stream = h.stream`,
    [names, heads.map((h) => h.seq), heads.map((h) => h.hash)],
  );
  await client.query('vacuum analyze audit_entries');
}

const rssMiB = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
};

async function timed(url: string, key: string): Promise<{ ms: number; bytes: number }> {
  const started = performance.now();
  const res = await fetch(url, { headers: { authorization: key } });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${body.slice(0, 200)}`);
  return { ms: performance.now() - started, bytes: body.length };
}

/** One CSV export read to its end while the serve process's resident memory is sampled. */
async function csvExport(url: string, key: string, pid: number) {
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMiB(pid));
  }, 20);
  const started = performance.now();
  const res = await fetch(url, { headers: { authorization: key, accept: 'text/csv' } });
  let rows = -1;
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (const b of chunk) if (b === 10) rows++;
  }
  clearInterval(sampler);
  return {
    rows,
    mib: bytes / 2 ** 20,
    seconds: (performance.now() - started) / 1000,
    rss_before_mib: before,
    rss_peak_mib: peak,
    rss_growth_mib: peak - before,
  };
}

export async function reports(scale: ReportScale) {
  const db = await scratchDatabase('reports');
  const handle = fromPg({ connectionString: db.url, max: 2 });
  await migrate(handle);
  await handle.close();
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  let loaded: Awaited<ReturnType<typeof load>>;
  try {
    loaded = await load(client, scale);
    console.log(`bench: reports: loaded in ${loaded.seconds.toFixed(0)} s; audit entries`);
    await loadAudit(client, scale.auditEntries, Math.min(scale.affiliates, 1000));
  } finally {
    await client.end();
  }
  const serve = await startServe({ databaseUrl: db.url });
  try {
    const key = adminKey(db.url);
    const base = `${serve.url}/v1/reports/referrals?from=${MONTH.from}&to=${MONTH.to}&group_by=month`;
    const affiliateMs: number[] = [];
    for (let i = 0; i < 220; i++) {
      const { ms } = await timed(
        `${base}&affiliate_id=${affiliateId(1 + ((i * 7919) % scale.affiliates))}`,
        key,
      );
      if (i >= 20) affiliateMs.push(ms);
    }
    const adminMs: number[] = [];
    let adminBytes = 0;
    for (let i = 0; i < 6; i++) {
      const { ms, bytes } = await timed(base, key);
      if (i > 0) adminMs.push(ms);
      adminBytes = bytes;
    }
    const pid = serve.child.pid ?? 0;
    // Day rows, every affiliate: the smaller export first, then one about ten times its size.
    const csv = [];
    for (const days of [10, 100]) {
      const to = new Date(Date.parse(`${MONTH.from}T00:00:00Z`) + (days - 1) * 86_400_000);
      const url = `${serve.url}/v1/reports/referrals?from=${MONTH.from}&to=${to.toISOString().slice(0, 10)}&group_by=day`;
      await sleep(500);
      csv.push({ days, ...(await csvExport(url, key, pid)) });
    }
    const verifyStarted = performance.now();
    const verified = JSON.parse(
      execFileSync(process.execPath, [CLI, 'audit', 'verify', '--json'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
        maxBuffer: 1 << 24,
      }).toString(),
    ) as { ok: boolean; entries: number };
    const verifySeconds = (performance.now() - verifyStarted) / 1000;
    const sorted = (v: number[]) => Float64Array.from(v).sort();
    return {
      scale,
      load_seconds: loaded.seconds,
      commissions_table_mib: loaded.table_mib,
      affiliate_month_ms: {
        p50: percentile(sorted(affiliateMs), 50),
        p99: percentile(sorted(affiliateMs), 99),
        max: Math.max(...affiliateMs),
        requests: affiliateMs.length,
      },
      admin_month_ms: { p50: percentile(sorted(adminMs), 50), max: Math.max(...adminMs), bytes: adminBytes },
      csv,
      audit_verify: {
        ok: verified.ok,
        entries: verified.entries,
        seconds: verifySeconds,
        entries_per_second: verified.entries / verifySeconds,
      },
    };
  } finally {
    await serve.stop();
    await db.drop();
  }
}

export type ReportsResult = Awaited<ReturnType<typeof reports>>;
