import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fromPg } from '../../src/adapters/postgres.js';
import type { StoredAuditEntry } from '../../src/modules/audit/index.js';
import {
  type AppendedEntry,
  AUDIT_APPEND_ONLY_SQLSTATE,
  appendAudit,
  entryHash,
  GENESIS_HASH,
  type VerifyResult,
  verifyAudit,
} from '../../src/modules/audit/index.js';
import type { Db, Queryable } from '../../src/ports/db.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { commissionEntry, tamperAsSuperuser } from '../helpers/audit.js';
import { BACKENDS } from '../helpers/db.js';
import { TEST_DATABASE_URL } from '../helpers/services.js';

type StoredRow = StoredAuditEntry;

const rowsOf = async (q: Queryable, stream: string) =>
  (await q.query<StoredRow>('select * from audit_entries where stream = $1 order by seq', [stream])).rows;

const rehash = (r: StoredRow) => entryHash({ ...r, at: r.at.toISOString() });

const append = (db: Db, stream: string, n: number, data?: Record<string, unknown>) =>
  db.tx((q) => appendAudit(q, commissionEntry(stream, n, data)));

describe.each(BACKENDS)('audit log on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend);
  });
  afterAll(() => ctx?.close());
  const db = () => ctx.testDb.db;

  it("chains each stream's entries in the appending transaction; a rolled-back change leaves none", async () => {
    const stream = 'affiliate:aff_chain';
    const first = await append(db(), stream, 1, { nested: { z: 1, a: [2, 'x'] } });
    const second = await append(db(), stream, 2);
    await expect(
      db().tx(async (q) => {
        await appendAudit(q, commissionEntry(stream, 3));
        throw new Error('the commission change failed');
      }),
    ).rejects.toThrow('the commission change failed');
    const third = await append(db(), stream, 4);
    const other = await append(db(), 'system', 5);

    expect([first.seq, first.prev_hash]).toEqual([1, GENESIS_HASH]);
    expect([second.seq, second.prev_hash]).toEqual([2, first.hash]);
    expect([third.seq, third.prev_hash]).toEqual([3, second.hash]);
    expect(other.stream).toBe('system');
    const rows = await rowsOf(db(), stream);
    expect(rows.map((r) => [r.seq, r.entity_id, r.prev_hash, r.hash])).toEqual(
      [first, second, third].map((e) => [e.seq, e.entity_id, e.prev_hash, e.hash]),
    );
    // What is stored (jsonb reorders keys; timestamptz keeps the millisecond) hashes as it was appended.
    expect(rows.map(rehash)).toEqual(rows.map((r) => r.hash));
    expect(rows[0]!.data).toEqual({ amount: 100, currency: 'usd', nested: { z: 1, a: [2, 'x'] } });
    const { rows: heads } = await db().query(
      'select last_seq, last_hash from audit_streams where stream = $1',
      [stream],
    );
    expect(heads).toEqual([{ last_seq: 3, last_hash: third.hash }]);
    expect(await verifyAudit(db())).toMatchObject({ ok: true });
  });

  it('refuses UPDATE, DELETE and TRUNCATE by the application role, and a head moving back', async () => {
    const stream = 'affiliate:aff_locked';
    const entry = await append(db(), stream, 1);
    // The service's own connection. It is a superuser here, which no grant could stop: the trigger does.
    const refused = [
      [`update audit_entries set data = '{"amount": 1}' where stream = $1`, [stream]],
      ['delete from audit_entries where stream = $1', [stream]],
      ['truncate audit_entries', []],
      ['truncate audit_entries, audit_streams', []],
      ['update audit_streams set last_seq = 0 where stream = $1', [stream]],
      ['delete from audit_streams where stream = $1', [stream]],
    ] as const;
    for (const [text, values] of refused) {
      await expect(db().query(text, values), text).rejects.toMatchObject({
        code: AUDIT_APPEND_ONLY_SQLSTATE,
      });
    }
    const rows = await rowsOf(db(), stream);
    expect(rows.map((r) => [r.seq, r.data, r.hash])).toEqual([[1, entry.data, entry.hash]]);
    expect(await verifyAudit(db())).toMatchObject({ ok: true });
  });

  it('refuses an append outside a transaction, writing no entry', async () => {
    const stream = 'affiliate:aff_loose';
    await expect(appendAudit(db(), commissionEntry(stream, 1))).rejects.toThrow(/inside the transaction/);
    expect(await rowsOf(db(), stream)).toEqual([]);
    expect((await append(db(), stream, 2)).seq).toBe(1);
    expect(await verifyAudit(db())).toMatchObject({ ok: true });
  });

  it('refuses data that would not read back as hashed, before writing anything', async () => {
    const stream = 'affiliate:aff_float';
    await expect(append(db(), stream, 1, { amount: 12.5 })).rejects.toThrow(
      /data\.amount: 12\.5 is not a safe integer/,
    );
    await expect(
      db().tx((q) => appendAudit(q, { ...commissionEntry(stream, 2), stream: 'affiliate:' })),
    ).rejects.toThrow(/neither system nor affiliate/);
    expect(await rowsOf(db(), stream)).toEqual([]);
  });

  it('lists entries to admins by stream or entity, in pages; an affiliate key reads only its own stream', async () => {
    const own = 'affiliate:aff_reader';
    const appended = [
      await append(db(), own, 1),
      await append(db(), own, 2),
      await append(db(), own, 3),
      await append(db(), 'affiliate:aff_neighbour', 2),
    ];
    const get = async (url: string, authorization: string) => {
      const res = await ctx.app.inject({ method: 'GET', url, headers: { authorization } });
      return { status: res.statusCode, body: res.json() };
    };
    const admin = await ctx.bearer('admin');

    const page1 = await get(`/v1/audit?stream=${own}&limit=2`, admin);
    expect(page1.status).toBe(200);
    expect(page1.body.has_more).toBe(true);
    expect(page1.body.data).toEqual(appended.slice(0, 2).map((e) => ({ ...e, id: `${own}/${e.seq}` })));
    const page2 = await get(`/v1/audit?stream=${own}&limit=2&starting_after=${page1.body.data[1].id}`, admin);
    expect(page2.body).toEqual({ data: [{ ...appended[2], id: `${own}/3` }], has_more: false });
    // com_2 was changed on two affiliates' streams.
    const byEntity = await get('/v1/audit?entity_type=commission&entity_id=com_2', admin);
    expect(byEntity.body.data.map((e: AppendedEntry) => e.stream)).toEqual(
      expect.arrayContaining(['affiliate:aff_neighbour', own]),
    );
    expect(byEntity.body.data.every((e: AppendedEntry) => e.entity_id === 'com_2')).toBe(true);

    const affiliate = await ctx.bearer('affiliate', 'aff_reader');
    const mine = await get('/v1/audit', affiliate);
    expect(mine.body.data.map((e: AppendedEntry) => [e.stream, e.seq])).toEqual([
      [own, 1],
      [own, 2],
      [own, 3],
    ]);
    expect((await get(`/v1/audit?stream=${own}&entity_id=com_3`, affiliate)).body.data).toHaveLength(1);
    for (const url of [
      '/v1/audit?stream=affiliate:aff_neighbour',
      '/v1/audit?stream=system',
      '/v1/audit/verify',
    ])
      expect(await get(url, affiliate)).toMatchObject({
        status: 403,
        body: { error: { code: 'forbidden' } },
      });
    const service = await ctx.bearer('service');
    expect(await get('/v1/audit', service)).toMatchObject({
      status: 403,
      body: { error: { code: 'forbidden' } },
    });
    expect(await get('/v1/audit', 'Bearer nope')).toMatchObject({
      status: 401,
      body: { error: { code: 'unauthenticated' } },
    });
    for (const query of [
      'limit=0',
      'limit=101',
      'stream=everyone',
      'starting_after=nowhere',
      'starting_after=system/0',
    ])
      expect(await get(`/v1/audit?${query}`, admin), query).toMatchObject({
        status: 400,
        body: { error: { code: 'validation_failed' } },
      });
  });

  it('verifies every chain for admins: entries and streams counted', async () => {
    const admin = await ctx.bearer('admin');
    const res = await ctx.app.inject({
      method: 'GET',
      url: '/v1/audit/verify',
      headers: { authorization: admin },
    });
    const { rows } = await db().query<{ entries: number; streams: number }>(
      'select count(*)::int as entries, count(distinct stream)::int as streams from audit_entries',
    );
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true, ...rows[0] });
    expect(rows[0]!.entries).toBeGreaterThan(0);
    const openapi = (await ctx.app.inject('/openapi.json')).json();
    expect(Object.keys(openapi.paths)).toEqual(expect.arrayContaining(['/v1/audit', '/v1/audit/verify']));
  });

  it('keeps every chain intact with no fork under 1,000 concurrent commission changes over 10 affiliates', {
    timeout: 120_000,
  }, async () => {
    // A pool wider than the service's, so that many appends to one stream really wait on each other; its
    // connections are opened one at a time first (all at once, they may not connect in time on a busy box).
    const wide =
      backend === 'postgres'
        ? fromPg({ connectionString: TEST_DATABASE_URL, schema: ctx.testDb.schema!, max: WIDE_POOL })
        : db();
    if (wide !== db()) await openConnections(wide, WIDE_POOL);
    try {
      const streams = Array.from({ length: 10 }, (_, i) => `affiliate:aff_storm${i}`);
      // Every change in flight at once, as many at the database as the pool has connections (a pool gives up
      // on a caller left waiting 3 s for one, which 1,000 queued transactions on a busy box would be).
      const inFlight = backend === 'postgres' ? WIDE_POOL : 1000;
      const appended: AppendedEntry[] = [];
      let next = 0;
      const worker = async () => {
        for (let n = next++; n < 1000; n = next++) appended.push(await append(wide, streams[n % 10]!, n));
      };
      const appends = Array.from({ length: inFlight }, worker);
      // Verifying over and over amid the storm (on PostgreSQL, through the service's own pool) never reports
      // a break: a stream's entries appended after its pages were read are checked up to its head.
      let storming = true;
      const stormOver = Promise.all(appends).finally(() => {
        storming = false;
      });
      const verdicts: VerifyResult[] = [];
      do verdicts.push(await verifyAudit(db(), { page: 50 }));
      while (storming);
      await stormOver;
      expect(verdicts.filter((v) => !v.ok)).toEqual([]);

      expect(new Set(appended.map((e) => `${e.stream}/${e.seq}`)).size).toBe(1000);
      for (const stream of streams) {
        const rows = await rowsOf(db(), stream);
        expect(rows.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
        // No fork: no two entries claim the same predecessor, and each follows the one before it.
        expect(new Set(rows.map((r) => r.prev_hash)).size).toBe(100);
        expect(rows.slice(1).every((r, i) => r.prev_hash === rows[i]!.hash)).toBe(true);
      }
      const total = (await db().query<{ n: number }>('select count(*)::int as n from audit_entries')).rows[0]!
        .n;
      const streamCount = (
        await db().query<{ n: number }>('select count(distinct stream)::int as n from audit_entries')
      ).rows[0]!.n;
      expect(await verifyAudit(db())).toEqual({ ok: true, entries: total, streams: streamCount });
    } finally {
      if (wide !== db()) await wide.close();
    }
  });
});

describe.each(BACKENDS)('audit verify names the first broken entry on %s', (backend) => {
  const A = 'affiliate:aff_a';
  const B = 'affiliate:aff_b';
  let ctx: TestContext;

  // Three entries in each of three streams; `audit verify` checks aff_a before aff_b before system.
  beforeEach(async () => {
    ctx = await createTestContext(backend);
    for (const stream of [A, B, 'system'])
      for (let n = 1; n <= 3; n++) await append(ctx.testDb.db, stream, n);
  });
  afterEach(() => ctx?.close());

  const whereB = (seq: number) => `stream = '${B}' and seq = ${seq}`;

  it.each([
    {
      case: 'data altered',
      tamper: async () => `update audit_entries set data = '{"amount": 999999}' where ${whereB(2)}`,
      first_bad: { stream: B, seq: 2, reason: 'hash_mismatch' },
    },
    {
      case: 'data altered and its hash recomputed',
      tamper: async () => {
        const row = (await rowsOf(ctx.testDb.db, B))[1]!;
        const data = { ...row.data, amount: 1 };
        const hash = rehash({ ...row, data });
        return `update audit_entries set data = '${JSON.stringify(data)}', hash = '${hash}' where ${whereB(2)}`;
      },
      first_bad: { stream: B, seq: 3, reason: 'broken_link' },
    },
    {
      case: 'a fork: entry 3 rewritten to follow entry 1',
      tamper: async () => {
        const [one, , three] = await rowsOf(ctx.testDb.db, B);
        const hash = rehash({ ...three!, prev_hash: one!.hash });
        return `update audit_entries set prev_hash = '${one!.hash}', hash = '${hash}' where ${whereB(3)}`;
      },
      first_bad: { stream: B, seq: 3, reason: 'fork' },
    },
    {
      case: 'an entry deleted from the middle',
      tamper: async () => `delete from audit_entries where ${whereB(2)}`,
      first_bad: { stream: B, seq: 3, reason: 'seq_gap' },
    },
    {
      case: 'the last entry deleted',
      tamper: async () => `delete from audit_entries where ${whereB(3)}`,
      first_bad: { stream: B, seq: 3, reason: 'missing_entries' },
    },
  ])('$case', async ({ tamper, first_bad }) => {
    const admin = await ctx.bearer('admin');
    const verify = () =>
      ctx.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: { authorization: admin } });
    expect((await verify()).json()).toEqual({ ok: true, entries: 9, streams: 3 });

    await tamperAsSuperuser(ctx.testDb, await tamper());
    const res = await verify();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: false, first_bad: { ...first_bad, message: expect.any(String) } });
  });
});

describe.skipIf(!BACKENDS.includes('postgres'))('audit appends on concurrent PostgreSQL connections', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext('postgres');
  });
  afterAll(() => ctx?.close());

  it('makes an append to a stream wait for the open transaction on it, while other streams go on', async () => {
    const db = ctx.testDb.db;
    const busy = 'affiliate:aff_busy';
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let appendedInA!: (pid: number) => void;
    const aAppended = new Promise<number>((r) => {
      appendedInA = r;
    });
    const a = db.tx(async (q) => {
      const e = await appendAudit(q, commissionEntry(busy, 1));
      appendedInA((await q.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid);
      await held;
      return e;
    });
    const aPid = await aAppended;
    let bDone = false;
    const b = append(db, busy, 2).then((e) => {
      bDone = true;
      return e;
    });
    // B waits on the head row A holds (PostgreSQL says so), and meanwhile another stream appends freely.
    await waitFor(async () => (await blockedBy(db, aPid)) === 1);
    const other = await append(db, 'affiliate:aff_free', 3);
    expect(other.seq).toBe(1);
    expect(bDone).toBe(false);
    release();
    const [ea, eb] = await Promise.all([a, b]);
    expect([ea.seq, eb.seq, eb.prev_hash]).toEqual([1, 2, ea.hash]);
  });
});

/** Connections of the wide pool used for the concurrent appends on PostgreSQL. */
const WIDE_POOL = 20;

/** Makes `db`'s pool open `n` connections, one after the other, and keep them (idle) for what follows. */
async function openConnections(db: Db, n: number): Promise<void> {
  let release!: () => void;
  const barrier = new Promise<void>((r) => {
    release = r;
  });
  const held: Promise<void>[] = [];
  for (let i = 0; i < n; i++) {
    let ready!: () => void;
    const connected = new Promise<void>((r) => {
      ready = r;
    });
    held.push(
      db.tx(async () => {
        ready();
        await barrier;
      }),
    );
    await connected;
  }
  release();
  await Promise.all(held);
}

/** How many backends wait for a lock that backend `pid` holds. */
async function blockedBy(db: Db, pid: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    'select count(*)::int as n from pg_stat_activity where $1::int = any(pg_blocking_pids(pid))',
    [pid],
  );
  return rows[0]!.n;
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}
