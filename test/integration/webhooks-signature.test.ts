import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getOrder } from '../../src/modules/orders/index.js';
import { createTestContext, type TestContext } from '../helpers/app.js';
import { BACKENDS } from '../helpers/db.js';
import { createOrderFor, deliveryHeaders, events, orderFixture, signed } from '../helpers/stripe-events.js';

const OLD_SECRET = 'whsec_old_rotated_out_soon';
const NEW_SECRET = 'whsec_new_rotated_in';

describe.each(BACKENDS)('webhook signature and payload checks on %s', (backend) => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await createTestContext(backend, { env: { STRIPE_WEBHOOK_SECRET: `${OLD_SECRET},${NEW_SECRET}` } });
  });
  afterAll(() => ctx?.close());

  const inboxCount = async () =>
    (await ctx.testDb.db.query<{ n: number }>('select count(*)::integer as n from stripe_events')).rows[0]!.n;
  const post = (payload: string | Buffer, signature: string | undefined) =>
    ctx.app.inject({ method: 'POST', url: '/webhooks/stripe', headers: deliveryHeaders(signature), payload });

  /** Sends, then asserts the 400 code and that the inbox did not change. */
  async function expectRefused(
    payload: string | Buffer,
    signature: string | undefined,
    code: string,
    reason?: string,
  ) {
    const before = await inboxCount();
    const res = await post(payload, signature);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe(code);
    if (reason) expect(res.json().error.details.reason).toBe(reason);
    expect(await inboxCount()).toBe(before);
  }

  const event = () => events.paymentSucceeded(orderFixture());

  it('refuses a delivery without a Stripe-Signature header', async () => {
    const { payload } = signed(event(), NEW_SECRET);
    await expectRefused(payload, undefined, 'signature_verification_failed', 'missing_header');
  });

  it('refuses a malformed header', async () => {
    const { payload } = signed(event(), NEW_SECRET);
    await expectRefused(
      payload,
      'definitely not a signature',
      'signature_verification_failed',
      'malformed_header',
    );
    await expectRefused(
      payload,
      `t=yesterday,v1=${'a'.repeat(64)}`,
      'signature_verification_failed',
      'malformed_header',
    );
  });

  it('refuses a header with only a v0 signature', async () => {
    const { payload, header } = signed(event(), NEW_SECRET);
    await expectRefused(
      payload,
      header.replace('v1=', 'v0='),
      'signature_verification_failed',
      'no_v1_signature',
    );
  });

  it('refuses a signature made with another secret', async () => {
    const { payload, header } = signed(event(), 'whsec_somebody_else');
    await expectRefused(payload, header, 'signature_verification_failed', 'no_matching_signature');
  });

  it('refuses a body with one byte changed', async () => {
    const { payload, header } = signed(event(), NEW_SECRET);
    const changed = Buffer.from(payload);
    const at = payload.indexOf('5000');
    changed[at] = '6'.charCodeAt(0);
    await expectRefused(changed, header, 'signature_verification_failed', 'no_matching_signature');
  });

  it('refuses the same event re-serialized', async () => {
    const { payload, header } = signed(event(), NEW_SECRET);
    const reserialized = JSON.stringify(JSON.parse(payload), null, 2);
    expect(JSON.parse(reserialized)).toEqual(JSON.parse(payload));
    await expectRefused(reserialized, header, 'signature_verification_failed', 'no_matching_signature');
  });

  it('refuses a timestamp older than the tolerance', async () => {
    const { payload, header } = signed(event(), NEW_SECRET, {
      timestamp: Math.floor(Date.now() / 1000) - 301,
    });
    await expectRefused(payload, header, 'signature_verification_failed', 'timestamp_outside_tolerance');
  });

  it('refuses an empty body', async () => {
    const { header } = signed(event(), NEW_SECRET);
    await expectRefused('', header, 'signature_verification_failed', 'empty_body');
    await expectRefused('', signed('', NEW_SECRET).header, 'signature_verification_failed', 'empty_body');
  });

  it('accepts a header with several v1 signatures of which one matches', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.paymentSucceeded(fx);
    const { payload, header } = signed(e, NEW_SECRET);
    const [t, v1] = header.split(',');
    const res = await post(payload, `${t},v1=${'0'.repeat(64)},${v1},v1=${'f'.repeat(64)}`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ received: true, event_id: e.id, status: 'processed' });
  });

  it('accepts the old and the new secret during a rotation', async () => {
    for (const secret of [OLD_SECRET, NEW_SECRET]) {
      const fx = orderFixture();
      await createOrderFor(ctx.testDb.db, fx);
      const e = events.completed(fx);
      const { payload, header } = signed(e, secret);
      const res = await post(payload, header);
      expect(res.statusCode).toBe(200);
      expect(res.json().status).toBe('processed');
      const order = await getOrder(ctx.testDb.db, fx.id);
      expect(order?.status).toBe('paid');
    }
  });

  it('answers 400 invalid_payload for a signed body that is not a Stripe event', async () => {
    for (const body of [
      '{"hello":"world"}',
      'not json at all',
      '[1,2,3]',
      '{"id":"evt_1","object":"charge"}',
    ]) {
      const { payload, header } = signed(body, NEW_SECRET);
      await expectRefused(payload, header, 'invalid_payload');
    }
  });

  it('answers 413 payload_too_large for a 2 MiB body, and stores nothing', async () => {
    const before = await inboxCount();
    const huge = `{"id":"evt_big","pad":"${'x'.repeat(2 * 1024 * 1024)}"}`;
    const { header } = signed(huge, NEW_SECRET);
    const res = await post(huge, header);
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('payload_too_large');
    expect(await inboxCount()).toBe(before);
  });

  it('takes the raw body whatever the content type says', async () => {
    const fx = orderFixture();
    await createOrderFor(ctx.testDb.db, fx);
    const e = events.completed(fx);
    const { payload, header } = signed(e, NEW_SECRET);
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/webhooks/stripe',
      headers: { 'content-type': 'text/plain', 'stripe-signature': header },
      payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().event_id).toBe(e.id);
  });
});
