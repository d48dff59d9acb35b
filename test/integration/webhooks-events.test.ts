import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OrderRow } from '../../src/modules/orders/index.js';
import { getOrder } from '../../src/modules/orders/index.js';
import type { PaymentFactSubscriber } from '../../src/modules/payments/index.js';
import { createModules } from '../../src/modules.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { runCli } from '../helpers/cli.js';
import { BACKENDS, urlWithSchema } from '../helpers/db.js';
import {
  createOrderFor,
  events,
  type FixtureEvent,
  type OrderFixture,
  orderFixture,
  signed,
  stripeEvent,
} from '../helpers/stripe-events.js';

const SECRET = 'whsec_events_suite';

describe.each(BACKENDS)('webhook event handling on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { env: { STRIPE_WEBHOOK_SECRET: SECRET } });
  });
  afterAll(() => ctx?.close());

  const deliver = (e: FixtureEvent) => {
    const { payload, header } = signed(e, SECRET);
    return ctx.modules.stripeEvents.handleWebhookEvent(Buffer.from(payload), header);
  };
  const order = async (id: string) => (await getOrder(ctx.testDb.db, id)) as OrderRow;
  const inbox = async (id: string) =>
    (
      await ctx.testDb.db.query<{
        status: string;
        reason: string | null;
        order_id: string | null;
        attempts: number;
      }>('select status, reason, order_id, attempts from stripe_events where id = $1', [id])
    ).rows[0];
  const history = async (id: string) =>
    (
      await ctx.testDb.db.query<{ to_status: string; changes: Record<string, unknown>; cause: string }>(
        'select to_status, changes, cause from order_events where order_id = $1 order by seq',
        [id],
      )
    ).rows;
  const outboxCount = async (id: string) =>
    (
      await ctx.testDb.db.query<{ n: number }>(
        'select count(*)::integer as n from outbox where order_id = $1',
        [id],
      )
    ).rows[0]!.n;
  async function newOrder(overrides: Partial<OrderFixture> = {}, opts: { withPaymentIntent?: boolean } = {}) {
    const fx = orderFixture(overrides);
    await createOrderFor(ctx.testDb.db, fx, opts);
    return fx;
  }

  describe('the payment events', () => {
    it('marks the order paid on checkout.session.completed with payment_status paid, once', async () => {
      const fx = await newOrder({}, { withPaymentIntent: false });
      const e = events.completed(fx);
      expect(await deliver(e)).toEqual({ received: true, event_id: e.id, status: 'processed' });
      expect(await deliver(e)).toEqual({ received: true, event_id: e.id, status: 'duplicate' });
      const o = await order(fx.id);
      expect(o).toMatchObject({
        status: 'paid',
        amount_paid: fx.amount,
        payment_intent_id: fx.paymentIntentId,
      });
      const h = await history(fx.id);
      expect(h.map((r) => r.to_status)).toEqual(['awaiting_payment', 'paid']);
      expect(h[1]!.cause).toBe(`stripe:${e.id}`);
      expect(h[1]!.changes).toMatchObject({
        status: ['awaiting_payment', 'paid'],
        amount_paid: [0, fx.amount],
      });
      expect(await outboxCount(fx.id)).toBe(2);
      expect(await inbox(e.id)).toMatchObject({ status: 'done', order_id: fx.id });
    });

    it('puts a completed but unpaid session in processing, then paid on async_payment_succeeded', async () => {
      const fx = await newOrder();
      expect((await deliver(events.completedPending(fx))).status).toBe('processed');
      expect((await order(fx.id)).status).toBe('processing');
      expect((await deliver(events.asyncSucceeded(fx))).status).toBe('processed');
      expect(await order(fx.id)).toMatchObject({ status: 'paid', amount_paid: fx.amount });
    });

    it('fails the order on async_payment_failed and on a declined card, which a later payment still fixes', async () => {
      const fx = await newOrder();
      await deliver(events.completedPending(fx));
      await deliver(events.asyncFailed(fx));
      expect((await order(fx.id)).status).toBe('payment_failed');

      const declined = await newOrder();
      await deliver(events.paymentFailed(declined));
      expect((await order(declined.id)).status).toBe('payment_failed');
      await deliver(events.completed(declined));
      expect((await order(declined.id)).status).toBe('paid');
    });

    it('expires the order only for its current session while unpaid', async () => {
      const fx = await newOrder();
      // A session the order's checkout never made says nothing about the order.
      const old = await deliver(events.expired(fx, 'cs_test_superseded'));
      expect(old.status).toBe('ignored');
      expect((await order(fx.id)).status).toBe('awaiting_payment');
      expect((await inbox(old.event_id))?.reason).toMatch(/not a Checkout Session this service created/);
      await deliver(events.expired(fx));
      expect((await order(fx.id)).status).toBe('expired');
    });

    it('flags an amount or currency that disagrees with the order and does not mark it paid', async () => {
      const fx = await newOrder();
      const e = events.completed(fx, { amount_total: fx.amount - 1 });
      expect((await deliver(e)).status).toBe('processed');
      let o = await order(fx.id);
      expect(o.status).toBe('awaiting_payment');
      expect(o.flags).toEqual([
        expect.objectContaining({
          rule: 'amount_mismatch',
          expected: { amount_total: fx.amount, currency: 'usd' },
          received: { amount_total: fx.amount - 1, currency: 'usd' },
          cause: `stripe:${e.id}`,
        }),
      ]);
      const eur = await newOrder();
      await deliver(events.completed(eur, { currency: 'eur' }));
      o = await order(eur.id);
      expect(o.status).toBe('awaiting_payment');
      expect(o.flags[0]).toMatchObject({ rule: 'amount_mismatch', received: { currency: 'eur' } });
    });

    it('flags a second successful payment for an order already paid', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      const again = { ...fx, paymentIntentId: `${fx.paymentIntentId}_again` };
      expect((await deliver(events.paymentSucceeded(again))).status).toBe('processed');
      const o = await order(fx.id);
      expect(o).toMatchObject({
        status: 'paid',
        payment_intent_id: fx.paymentIntentId,
        amount_paid: fx.amount,
      });
      expect(o.flags).toEqual([
        expect.objectContaining({ rule: 'second_payment', object_id: again.paymentIntentId }),
      ]);
    });
  });

  describe('events recorded and ignored', () => {
    it('ignores events of the other mode, with the reason', async () => {
      const fx = await newOrder();
      const e = stripeEvent('checkout.session.completed', events.completed(fx).data.object, {
        livemode: true,
      });
      expect((await deliver(e)).status).toBe('ignored');
      expect(await inbox(e.id)).toMatchObject({
        status: 'ignored',
        reason: expect.stringMatching(/live-mode event/),
      });
      expect((await order(fx.id)).status).toBe('awaiting_payment');
    });

    it('ignores types it does not handle, with the reason', async () => {
      const e = stripeEvent('customer.created', { id: 'cus_1', object: 'customer' });
      expect((await deliver(e)).status).toBe('ignored');
      expect(await inbox(e.id)).toMatchObject({
        status: 'ignored',
        reason: 'customer.created events are not handled',
      });
    });

    it('ignores events for an order this service never created, with the reason', async () => {
      const stranger = orderFixture();
      const e = events.completed(stranger);
      expect((await deliver(e)).status).toBe('ignored');
      expect(await inbox(e.id)).toMatchObject({
        status: 'ignored',
        reason: `order ${stranger.id} is unknown to this service`,
      });
    });
  });

  describe('out of order', () => {
    it('applies a charge.refunded that came before checkout.session.completed once the payment arrives', async () => {
      const fx = await newOrder({}, { withPaymentIntent: false });
      const refund = await deliver(events.chargeRefunded(fx, 2000));
      expect(refund.status).toBe('queued');
      expect(await inbox(refund.event_id)).toMatchObject({
        status: 'deferred',
        order_id: fx.id,
        attempts: 1,
      });
      expect((await deliver(events.completed(fx))).status).toBe('processed');
      expect(await order(fx.id)).toMatchObject({
        status: 'partially_refunded',
        amount_paid: 5000,
        amount_refunded: 2000,
      });
      // Woken by the payment's own try, which claimed its next try as it settled: one try more, no wait.
      expect(await inbox(refund.event_id)).toMatchObject({ status: 'done', attempts: 2 });
    });

    it('ends paid when async_payment_succeeded comes before completed', async () => {
      const fx = await newOrder();
      await deliver(events.asyncSucceeded(fx));
      expect((await order(fx.id)).status).toBe('paid');
      expect((await deliver(events.completedPending(fx))).status).toBe('processed');
      expect((await order(fx.id)).status).toBe('paid');
      expect((await history(fx.id)).map((h) => h.to_status)).toEqual(['awaiting_payment', 'paid']);
    });

    it('stays paid when expired comes after completed', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      await deliver(events.expired(fx));
      expect((await order(fx.id)).status).toBe('paid');
    });

    it('stays failed when completed (unpaid) comes after async_payment_failed', async () => {
      const fx = await newOrder();
      await deliver(events.asyncFailed(fx));
      await deliver(events.completedPending(fx));
      expect((await order(fx.id)).status).toBe('payment_failed');
    });

    it('stays processing when a declined attempt is reported after the session completed', async () => {
      const fx = await newOrder();
      await deliver(events.completedPending(fx));
      const late = await deliver(events.paymentFailed(fx));
      expect((await inbox(late.event_id))?.reason).toBe('no change: order is already processing');
      expect((await order(fx.id)).status).toBe('processing');
    });

    it('ends lost when a dispute closes before it is reported open', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      const created = Math.floor(Date.now() / 1000);
      await deliver(events.dispute(fx, 'dp_early_close', 'lost', created, 'charge.dispute.closed'));
      expect((await order(fx.id)).dispute_status).toBe('lost');
      await deliver(
        events.dispute(fx, 'dp_early_close', 'needs_response', created, 'charge.dispute.created'),
      );
      expect((await order(fx.id)).dispute_status).toBe('lost');
      expect((await history(fx.id)).map((h) => h.changes.dispute_status).filter(Boolean)).toEqual([
        [null, 'open'],
        ['open', 'lost'],
      ]);
    });
  });

  describe('partial refunds', () => {
    it('gives partially_refunded three times, then refunded with the right amount_refunded', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      let total = 0;
      for (const [i, amount] of [1000, 500, 1500].entries()) {
        total += amount;
        await deliver(events.refund(fx, `re_part_${fx.id}_${i}`, amount));
        await deliver(events.chargeRefunded(fx, total));
        expect(await order(fx.id)).toMatchObject({ status: 'partially_refunded', amount_refunded: total });
      }
      await deliver(events.refund(fx, `re_rest_${fx.id}`, fx.amount - total));
      await deliver(events.chargeRefunded(fx, fx.amount));
      expect(await order(fx.id)).toMatchObject({ status: 'refunded', amount_refunded: fx.amount });
      expect((await history(fx.id)).map((h) => h.to_status)).toEqual([
        'awaiting_payment',
        'paid',
        'partially_refunded',
        'partially_refunded',
        'partially_refunded',
        'refunded',
      ]);
    });

    it('applies two different refunds of the same amount both', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      await deliver(events.refund(fx, `re_same_a_${fx.id}`, 700));
      await deliver(events.refund(fx, `re_same_b_${fx.id}`, 700));
      expect(await order(fx.id)).toMatchObject({ status: 'partially_refunded', amount_refunded: 1400 });
    });

    it('applies a duplicated refund event once, and the same refund told twice once', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      const created = events.refund(fx, `re_dup_${fx.id}`, 900, { dashboard: true });
      expect((await deliver(created)).status).toBe('processed');
      expect((await deliver(created)).status).toBe('duplicate');
      const updated = events.refund(fx, `re_dup_${fx.id}`, 900, { type: 'refund.updated', dashboard: true });
      expect((await deliver(updated)).status).toBe('processed');
      expect(await order(fx.id)).toMatchObject({ amount_refunded: 900 });
      expect((await history(fx.id)).filter((h) => h.changes.amount_refunded)).toHaveLength(1);
    });

    it('gives a failed refund back: amount_refunded falls, and the status with it', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      const id = `re_fails_${fx.id}`;
      await deliver(events.refund(fx, id, fx.amount));
      await deliver(events.chargeRefunded(fx, fx.amount));
      expect(await order(fx.id)).toMatchObject({ status: 'refunded', amount_refunded: fx.amount });

      const failed = events.refund(fx, id, fx.amount, { status: 'failed', type: 'refund.updated' });
      expect((await deliver(failed)).status).toBe('processed');
      expect(await order(fx.id)).toMatchObject({ status: 'paid', amount_refunded: 0 });
      expect((await history(fx.id)).at(-1)).toMatchObject({
        to_status: 'paid',
        changes: { status: ['refunded', 'paid'], amount_refunded: [fx.amount, 0] },
        cause: `stripe:${failed.id}`,
      });
      const { rows } = await ctx.testDb.db.query<{ type: string }>(
        'select type from outbox where order_id = $1 order by seq desc limit 1',
        [fx.id],
      );
      expect(rows[0]?.type).toBe('order.paid');

      // A later refund counts; the charge's older running total, told again, does not bring the failed one back.
      await deliver(events.refund(fx, `re_after_${fx.id}`, 1500));
      await deliver(events.chargeRefunded(fx, 1500));
      await deliver(events.chargeRefunded(fx, fx.amount));
      expect(await order(fx.id)).toMatchObject({ status: 'partially_refunded', amount_refunded: 1500 });
    });

    it('does not count a refund of another PaymentIntent against the order, and notes it on the second payment', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      const second = {
        ...fx,
        paymentIntentId: `${fx.paymentIntentId}_again`,
        chargeId: `${fx.chargeId}_again`,
      };
      await deliver(events.paymentSucceeded(second));
      expect((await deliver(events.refund(second, `re_other_${fx.id}`, fx.amount))).status).toBe('processed');
      expect((await deliver(events.chargeRefunded(second, fx.amount))).status).toBe('processed');
      const o = await order(fx.id);
      expect(o).toMatchObject({ status: 'paid', amount_refunded: 0 });
      expect(o.flags).toEqual([
        expect.objectContaining({
          rule: 'second_payment',
          object_id: second.paymentIntentId,
          amount_refunded: fx.amount,
        }),
      ]);

      await deliver(events.refund(fx, `re_own_${fx.id}`, 1000));
      await deliver(events.chargeRefunded(fx, 1000));
      expect(await order(fx.id)).toMatchObject({ status: 'partially_refunded', amount_refunded: 1000 });
    });

    it('counts a refund only once it has succeeded, and never moves it back to pending', async () => {
      const fx = await newOrder();
      await deliver(events.completed(fx));
      const id = `re_pending_${fx.id}`;
      const pending = events.refund(fx, id, 400, { status: 'pending' });
      const succeeded = events.refund(fx, id, 400, { status: 'succeeded', type: 'refund.updated' });
      await deliver(succeeded);
      await deliver(pending);
      expect(await order(fx.id)).toMatchObject({ amount_refunded: 400 });
      const row = await ctx.testDb.db.query<{ status: string }>(
        'select status from stripe_refunds where id = $1',
        [id],
      );
      expect(row.rows[0]?.status).toBe('succeeded');
    });
  });

  describe('retries and dead letters', () => {
    const failingSubscriber: PaymentFactSubscriber = async (_q, fact) => {
      if (fact.type === 'payment.captured') throw new Error('the referral program is broken');
    };

    it('retries a failing event with backoff, dead-letters it at the limit, and replays it', async () => {
      const broken = createModules(ctx.infra, {
        factSubscribers: [failingSubscriber],
        stripeEvents: { retry: { baseMs: 1, capMs: 1, maxAttempts: 3 } },
      }).stripeEvents;
      const fx = await newOrder();
      // The charge's evidence is there already, so the captured fact reaches the broken subscriber at once.
      expect((await deliver(events.chargeSucceeded(fx))).status).toBe('processed');
      const e = events.completed(fx);
      const { payload, header } = signed(e, SECRET);
      expect((await broken.handleWebhookEvent(Buffer.from(payload), header)).status).toBe('queued');
      expect(await inbox(e.id)).toMatchObject({ status: 'pending', attempts: 1 });
      expect((await order(fx.id)).status).toBe('awaiting_payment');

      for (let i = 0; (await inbox(e.id))?.status === 'pending' && i < 100; i++) {
        await new Promise((r) => setTimeout(r, 5));
        await broken.applyDue();
      }
      expect(await inbox(e.id)).toMatchObject({
        status: 'failed',
        attempts: 3,
        reason: 'retry limit reached: the referral program is broken',
      });
      const failed = await ctx.modules.stripeEvents.listEvents({ status: 'failed' });
      expect(failed.data.map((r) => r.id)).toContain(e.id);

      if (backend === 'postgres' && ctx.testDb.schema) {
        // The operator's view: the same through `payments-service events …` in a process of its own.
        const env = { DATABASE_URL: urlWithSchema(ctx.testDb.schema) };
        const listed = await runCli(['events', 'list', '--status', 'failed', '--json'], env);
        expect(listed.code).toBe(0);
        const page = JSON.parse(listed.stdout) as {
          data: Array<{ id: string; status: string }>;
          has_more: boolean;
        };
        expect(page.data).toEqual([expect.objectContaining({ id: e.id, status: 'failed' })]);
        const replayed = await runCli(['events', 'replay', e.id, '--json'], env);
        expect(replayed.code).toBe(0);
        expect(JSON.parse(replayed.stdout)).toEqual({ event_id: e.id, status: 'done', reason: null });
        const missing = await runCli(['events', 'replay', 'evt_not_there'], env);
        expect(missing.code).toBe(1);
        expect(missing.stderr).toBe('payments-service: no event evt_not_there in the inbox\n');
      } else {
        expect(await ctx.modules.stripeEvents.replayEvent(e.id)).toEqual({
          event_id: e.id,
          status: 'done',
          reason: null,
        });
      }
      expect((await order(fx.id)).status).toBe('paid');
      expect(await ctx.modules.stripeEvents.replayEvent(e.id)).toEqual({
        event_id: e.id,
        status: 'done',
        reason: null,
      });
      expect((await history(fx.id)).map((r) => r.to_status)).toEqual(['awaiting_payment', 'paid']);
      expect(await ctx.modules.stripeEvents.replayEvent('evt_not_there')).toBeNull();
    });

    it('publishes webhook metrics and the inbox backlog by status', async () => {
      const res = await ctx.app.inject('/metrics');
      expect(res.statusCode).toBe(200);
      expect(res.body).toMatch(/webhook_events_processed_total\{type="checkout.session.completed"\} [1-9]/);
      expect(res.body).toMatch(/webhook_events_duplicate_total\{type="[a-z_.]+"\} [1-9]/);
      expect(res.body).toMatch(/webhook_events_ignored_total\{type="customer.created"\} [1-9]/);
      expect(res.body).toMatch(/webhook_events_deferred_total\{type="charge.refunded"\} [1-9]/);
      expect(res.body).toMatch(/webhook_inbox_events\{status="done"\} [1-9]/);
      expect(res.body).toMatch(/webhook_inbox_events\{status="failed"\} 0/);
      expect(res.body).toMatch(/webhook_processing_seconds_count\{type="checkout.session.completed"\} [1-9]/);
    });
  });

  it('ends in the same order state for any permutation, with duplicates, of an order history (property)', async () => {
    const histories = fc
      .record({
        refunds: fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 3 }),
        refundAll: fc.boolean(),
        dispute: fc.constantFrom('none', 'open', 'won', 'lost'),
      })
      .chain((h) => {
        const n = eventCount(h.refunds.length + (h.refundAll ? 1 : 0), h.dispute);
        return fc.record({
          h: fc.constant(h),
          order: fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }),
          duplicates: fc.array(fc.tuple(fc.nat(n - 1), fc.nat()), { maxLength: n }),
        });
      });
    await fc.assert(
      fc.asyncProperty(histories, async ({ h, order: permutation, duplicates }) => {
        const fx = await newOrder({ amount: 5000 });
        const amounts = [...h.refunds];
        const partial = amounts.reduce((a, b) => a + b, 0);
        if (h.refundAll) amounts.push(fx.amount - partial);
        const all = buildHistory(fx, amounts, h.dispute);
        const sequence = permutation.map((i) => all[i]!);
        for (const [which, at] of duplicates) sequence.splice(at % (sequence.length + 1), 0, all[which]!);
        for (const e of sequence) await deliver(e);

        const refunded = amounts.reduce((a, b) => a + b, 0);
        const o = await order(fx.id);
        expect(o).toMatchObject({
          status: refunded === fx.amount ? 'refunded' : 'partially_refunded',
          amount_paid: fx.amount,
          amount_refunded: refunded,
          dispute_status: h.dispute === 'none' ? null : h.dispute,
          flags: [],
        });
        const open = await ctx.testDb.db.query(
          `select id from stripe_events where order_id = $1 and status not in ('done')`,
          [fx.id],
        );
        expect(open.rows).toEqual([]);
      }),
      { numRuns: backend === 'pglite' ? 40 : 25 },
    );
  });
});

/** Payment (2 events), each refund (2), the dispute (0, 1 or 2): the length of `buildHistory`'s list. */
function eventCount(refunds: number, dispute: string) {
  return 2 + refunds * 2 + (dispute === 'none' ? 0 : dispute === 'open' ? 1 : 2);
}

/** The whole history Stripe would send for the order, in the order it happened. */
function buildHistory(fx: OrderFixture, refunds: number[], dispute: string): FixtureEvent[] {
  const all: FixtureEvent[] = [events.paymentSucceeded(fx), events.completed(fx)];
  let total = 0;
  refunds.forEach((amount, i) => {
    total += amount;
    all.push(events.refund(fx, `re_${fx.id}_${i}`, amount), events.chargeRefunded(fx, total));
  });
  const created = Math.floor(Date.now() / 1000);
  if (dispute !== 'none')
    all.push(events.dispute(fx, `dp_${fx.id}`, 'needs_response', created, 'charge.dispute.created'));
  if (dispute === 'won' || dispute === 'lost') {
    all.push(events.dispute(fx, `dp_${fx.id}`, dispute, created, 'charge.dispute.closed'));
  }
  return all;
}
