import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db, Queryable, Sql } from '../../src/ports/db.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/services.js';
import { createOrderFor, events, orderFixture, signed } from '../helpers/stripe-events.js';

const SECRET = 'whsec_cost_suite';

/**
 * The webhook path's cost in round trips: a new checkout.session.completed takes 11 SQL statements (a
 * transaction's begin and commit included) and 5 Redis commands. It took 15: the delivery that has just
 * inserted the inbox row no longer reads its status back twice, the settling update claims the events
 * deferred on the order in the same statement, and an order's update writes its diff in the same statement.
 * Counted at the Db port and with Redis's own MONITOR, on the real servers.
 */
const MAX_STATEMENTS = 11;
const MAX_REDIS_COMMANDS = 5;

/** Wraps a Db so that every statement it sends is written down, a transaction's begin and commit included. */
function countingDb(db: Db, log: string[]): Db {
  const text = (sql: Sql | string) => (typeof sql === 'string' ? sql : sql.text).replace(/\s+/g, ' ').trim();
  const counted = (q: Queryable): Queryable => ({
    query: (sql, values) => {
      log.push(text(sql));
      return q.query(sql, values);
    },
    exec: (script) => q.exec(script),
  });
  return {
    ...counted(db),
    kind: db.kind,
    tx: (fn) =>
      db.tx(async (q) => {
        log.push('begin');
        const result = await fn(counted(q));
        log.push('commit');
        return result;
      }),
    close: () => db.close(),
  };
}

describe.each(BACKENDS)('the cost of one new event on %s', (backend) => {
  let ctx: TestContext;
  const statements: string[] = [];
  beforeAll(async () => {
    ctx = await createTestContext(backend, {
      env: { STRIPE_WEBHOOK_SECRET: SECRET },
      wrapDb: (db) => countingDb(db, statements),
    });
  });
  afterAll(() => ctx?.close());

  it(`applies a new checkout.session.completed in at most ${MAX_STATEMENTS} statements and ${MAX_REDIS_COMMANDS} Redis commands`, async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.completed(fx);
    const { payload, header } = signed(e, SECRET);
    const monitor = backend === 'postgres' ? await new Redis(TEST_REDIS_URL).monitor() : undefined;
    const commands: string[] = [];
    monitor?.on('monitor', (_time: string, args: string[], source: string) => {
      // Commands a Lua script runs inside Redis are part of the one EVAL that sent them.
      if (source !== 'lua' && args.some((a) => a.includes(e.id))) commands.push(args[0]!.toLowerCase());
    });
    statements.length = 0;
    try {
      const answer = await ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
      expect(answer.status).toBe('processed');
      // MONITOR reports asynchronously; give the last command a moment to arrive.
      if (monitor) await new Promise((r) => setTimeout(r, 200));
    } finally {
      monitor?.disconnect();
    }
    expect(
      (await ctx.testDb.db.query<{ status: string }>('select status from orders where id = $1', [fx.id]))
        .rows,
    ).toEqual([{ status: 'paid' }]);
    expect(statements.length, statements.join('\n')).toBeLessThanOrEqual(MAX_STATEMENTS);
    if (monitor) {
      expect(commands.length, commands.join('\n')).toBeLessThanOrEqual(MAX_REDIS_COMMANDS);
      // The seed's flow, each step once: check seen, lock, re-check, mark complete, release.
      expect(commands).toEqual(['get', 'set', 'get', 'set', 'eval']);
    }
  });
});
