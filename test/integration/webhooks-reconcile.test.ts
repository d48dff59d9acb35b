import type Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../../src/modules/orders/index.js';
import { createModules } from '../../src/modules.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createOrderFor, events, type FixtureEvent, orderFixture } from '../helpers/stripe-events.js';

describe.each(BACKENDS)('reconcile on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend);
  });
  afterAll(() => ctx?.close());

  /** A Stripe whose `events.list` pages through `pages`, continuing `starting_after` a page's last id. */
  function stripeListing(pages: FixtureEvent[][]) {
    const list = async (params: { starting_after?: string }) => {
      const index = params.starting_after
        ? pages.findIndex((p) => p.at(-1)?.id === params.starting_after) + 1
        : 0;
      return { object: 'list', data: pages[index] ?? [], has_more: index < pages.length - 1 };
    };
    return { events: { list } } as unknown as Stripe;
  }

  it('applies the missing events of every page oldest first, and counts the unreadable ones', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx, { withPaymentIntent: false });
    const base = Math.floor(Date.now() / 1000) - 60;
    // The refund is newer than the payment it refunds but lists a page earlier: applied first, it would wait.
    const paid = { ...events.completed(fx), created: base };
    const refund = { ...events.chargeRefunded(fx, 2000), created: base + 10 };
    const junk = { ...events.completed(fx), created: base + 5, data: {} } as unknown as FixtureEvent;
    const webhooks = createModules({
      ...ctx.infra,
      stripe: stripeListing([[refund, junk], [paid]]),
    }).stripeEvents;

    const summary = await webhooks.reconcile({ since: new Date((base - 60) * 1000) });
    expect(summary).toMatchObject({
      listed: 3,
      recorded: 2,
      applied: 2,
      waiting: 0,
      failed: 0,
      unreadable: 1,
    });
    const { rows } = await ctx.testDb.db.query<{ id: string; status: string; attempts: number }>(
      'select id, status, attempts from stripe_events where id = any($1::text[]) order by id',
      [[paid.id, refund.id, junk.id]],
    );
    expect(rows).toEqual(
      [paid, refund]
        .map((e) => ({ id: e.id, status: 'done', attempts: 1 }))
        .sort((a, b) => (a.id < b.id ? -1 : 1)),
    );
    expect(await getOrder(ctx.testDb.db, fx.id)).toMatchObject({
      status: 'partially_refunded',
      amount_paid: 5000,
      amount_refunded: 2000,
    });
  });
});
