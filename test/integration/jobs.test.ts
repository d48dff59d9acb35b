import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { claimOne, type QueueTable, queueWorker, retryLater } from '../../src/jobs/index.js';
import { STRIPE_CALLS_QUEUE } from '../../src/modules/stripe-calls/stripe-calls.sql.js';
import { INBOX_QUEUE } from '../../src/modules/stripe-events/stripe-events.sql.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

/**
 * The one background-job mechanism (src/jobs), on a queue table of the test's own with the columns every
 * queue table has: claims with a lease, retries fenced by the try number, dead letters at the limit.
 */
const QUEUE: QueueTable = {
  table: 'test_jobs',
  key: 'id',
  open: `job.status = 'open'`,
  returning: 'job.id, job.attempts',
  deadLetter: (id, attempts, reason) => ({
    text: `update test_jobs set status = 'dead', last_error = $2 where id = $1 and attempts = $3::integer`,
    values: [id, reason, attempts],
  }),
};
const POLICY = { baseMs: 60_000, capMs: 60_000, jitter: 'equal' as const, maxAttempts: 3 };

describe.each(BACKENDS)('the job mechanism on %s', (backend) => {
  let testDb: TestDb;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
    await testDb.db.query(`create table test_jobs (
      id text primary key, status text not null default 'open', attempts integer not null default 0,
      next_attempt_at timestamptz not null default now(), last_error text)`);
  });
  afterAll(() => testDb?.close());
  beforeEach(() => testDb.db.query('delete from test_jobs'));

  const rows = async () =>
    (
      await testDb.db.query<{
        id: string;
        status: string;
        attempts: number;
        last_error: string | null;
        due: boolean;
      }>(
        'select id, status, attempts, last_error, next_attempt_at <= now() as due from test_jobs order by id',
      )
    ).rows;
  const add = (...ids: string[]) =>
    testDb.db.query('insert into test_jobs (id) select unnest($1::text[])', [ids]);
  const makeDue = () => testDb.db.query('update test_jobs set next_attempt_at = now()');

  function worker(run: (job: { id: string; attempts: number }) => Promise<void>, batchSize = 10) {
    return queueWorker<{ id: string; attempts: number }>({
      name: 'test',
      db: testDb.db,
      queue: QUEUE,
      policy: POLICY,
      batchSize,
      leaseMs: 60_000,
      idleMs: 10,
      keyOf: (job) => job.id,
      run,
    });
  }

  it('gives each due row to one claim at a time, and leases it until its try ends', async () => {
    await add('a', 'b', 'c', 'd');
    const claimed: string[][] = [[], []];
    const hold = new Promise<void>((r) => setTimeout(r, 100));
    const claimers = [0, 1].map((i) =>
      worker(async (job) => {
        claimed[i]!.push(job.id);
        await hold;
        await testDb.db.query(`update test_jobs set status = 'done' where id = $1`, [job.id]);
      }, 2),
    );
    await Promise.all(claimers.map((w) => w.runOnce()));
    expect([...claimed[0]!, ...claimed[1]!].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect((await rows()).map((r) => [r.id, r.status, r.attempts])).toEqual([
      ['a', 'done', 1],
      ['b', 'done', 1],
      ['c', 'done', 1],
      ['d', 'done', 1],
    ]);
    // A row under a lease is not claimable, even by key.
    await add('e');
    expect((await testDb.db.query(claimOne(QUEUE, 'e', 60_000))).rows).toHaveLength(1);
    expect((await testDb.db.query(claimOne(QUEUE, 'e', 60_000))).rows).toHaveLength(0);
    expect(await worker(async () => {}).runOnce()).toBe(0);
  });

  it('retries what threw after a backoff, and dead-letters it at the limit', async () => {
    await add('f');
    const failing = worker(async () => {
      throw new Error('receiver says no');
    });
    for (let attempt = 1; attempt <= POLICY.maxAttempts; attempt++) {
      expect(await failing.runOnce()).toBe(1);
      const [row] = await rows();
      expect(row).toMatchObject({ attempts: attempt, due: false });
      if (attempt < POLICY.maxAttempts)
        expect(row).toMatchObject({ status: 'open', last_error: 'receiver says no' });
      await makeDue();
    }
    expect(await rows()).toEqual([
      {
        id: 'f',
        status: 'dead',
        attempts: 3,
        last_error: 'retry limit reached: receiver says no',
        due: true,
      },
    ]);
    expect(await failing.runOnce()).toBe(0);
  });

  it("fences a try's result: a try whose lease was taken over cannot reschedule the newer one", async () => {
    await add('g');
    const first = (await testDb.db.query<{ id: string; attempts: number }>(claimOne(QUEUE, 'g', 60_000)))
      .rows[0]!;
    // Its lease runs out; another worker claims the row for try 2.
    await makeDue();
    const second = (await testDb.db.query<{ id: string; attempts: number }>(claimOne(QUEUE, 'g', 60_000)))
      .rows[0]!;
    expect([first.attempts, second.attempts]).toEqual([1, 2]);
    await retryLater(
      testDb.db,
      QUEUE,
      POLICY,
      { key: 'g', attempts: first.attempts },
      {
        error: 'late failure of try 1',
        deadLetterReason: 'never',
      },
    );
    expect(await rows()).toEqual([{ id: 'g', status: 'open', attempts: 2, last_error: null, due: false }]);
  });
});

describe.each(BACKENDS)("the service's own queues on %s", (backend) => {
  let testDb: TestDb;
  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(() => testDb?.close());

  /** Try 1 of `key` ran out of lease and try 2 took the row over; try 1 then reports its last failure. */
  async function lateFailureOfTheFirstTry(queue: QueueTable, key: string) {
    await testDb.db.query(claimOne(queue, key, 60_000));
    await testDb.db.query(`update ${queue.table} set next_attempt_at = now() where ${queue.key} = $1`, [key]);
    await testDb.db.query(claimOne(queue, key, 60_000));
    // At the limit for try 1, and so a dead letter, were it not fenced.
    return retryLater(
      testDb.db,
      queue,
      { ...POLICY, maxAttempts: 1 },
      { key, attempts: 1 },
      {
        error: 'late failure of try 1',
        deadLetterReason: 'retry limit reached: late failure of try 1',
      },
    );
  }

  it('never dead-letters an inbox event on the word of a try whose lease was taken over', async () => {
    await testDb.db.query(
      `insert into stripe_events (id, type, livemode, stripe_created_at, payload, source, attempts)
       values ('evt_fenced', 'checkout.session.completed', false, now(), '{}', 'webhook', 0)`,
    );
    await lateFailureOfTheFirstTry(INBOX_QUEUE, 'evt_fenced');
    const { rows } = await testDb.db.query('select status, attempts from stripe_events where id = $1', [
      'evt_fenced',
    ]);
    expect(rows).toEqual([{ status: 'pending', attempts: 2 }]);
  });

  it('never gives up a Stripe call on the word of a try whose lease was taken over', async () => {
    await testDb.db.exec(
      `insert into orders (id, status, currency, amount_total, line_items) values ('ord_fenced', 'paid', 'usd', 100, '[]');
       insert into stripe_calls (id, kind, order_id, params, status, attempts, next_attempt_at)
       values ('call_fenced', 'refund', 'ord_fenced', '{}', 'pending', 0, now())`,
    );
    await lateFailureOfTheFirstTry(STRIPE_CALLS_QUEUE, 'call_fenced');
    const { rows } = await testDb.db.query('select status, attempts from stripe_calls where id = $1', [
      'call_fenced',
    ]);
    expect(rows).toEqual([{ status: 'pending', attempts: 2 }]);
  });
});
