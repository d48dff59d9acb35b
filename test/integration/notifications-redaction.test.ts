import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOutboxRelay } from '../../src/modules/notifications/index.js';
import { createOrder } from '../../src/modules/orders/index.js';
import { freePort } from '../helpers/cli.js';
import { BACKENDS, openTestDb, type TestDb } from '../helpers/db.js';

/**
 * Issue 10 item 6: no URL or secret is ever written to an error column. The Orders service's URL may carry
 * its credential in the path or the query, and the relay's `last_error` quotes what fetch and the receiver
 * said, which can include both. Each case fails a real delivery and reads the row the relay wrote.
 */

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const TOKEN = 's3cret-token-0123456789';
const PATH_KEY = 'k3y-in-the-path';
const hookPath = `/hooks/${PATH_KEY}?token=${TOKEN}`;

/** Everything of the configured URL and secret that must not reach `last_error`. */
function expectNoSecretIn(text: string | null, url: string) {
  expect(text).not.toBeNull();
  for (const secret of [url, hookPath, PATH_KEY, TOKEN, SECRET, SECRET.slice('whsec_'.length)])
    expect(text).not.toContain(secret);
  // Nor the first characters of one, cut off where the stored error ends.
  expect(text).not.toContain(TOKEN.slice(0, 4));
}

/** A receiver that refuses every message with a 404 whose body `answer` writes from the request. */
async function refusingReceiver(answer: (req: IncomingMessage) => string) {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(404, { 'content-type': 'text/plain' }).end(answer(req)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe.each(BACKENDS)('outbox last_error on %s', (backend) => {
  let testDb: TestDb;
  let n = 0;

  beforeAll(async () => {
    testDb = await openTestDb(backend);
  });
  afterAll(() => testDb?.close());

  /** Queues one message, lets a relay for `url` try it once, and returns the error it stored. */
  async function failOnce(url: string): Promise<string | null> {
    const db = testDb.db;
    // Earlier cases' messages stay undelivered; set aside, they are not claimed again by this case's relay.
    await db.query('update outbox set delivered_at = now() where delivered_at is null');
    const id = `ord_redaction_${++n}`;
    await db.tx((q) =>
      createOrder(
        q,
        {
          id,
          currency: 'usd',
          amount_total: 1200,
          line_items: [{ name: 'Mug', unit_amount: 1200, quantity: 1 }],
        },
        'api:req_redaction_test',
      ),
    );
    const relay = createOutboxRelay({ db, url, secret: SECRET });
    expect(await relay.runOnce()).toBe(1);
    const { rows } = await db.query<{
      attempts: number;
      delivered_at: Date | null;
      last_error: string | null;
    }>('select attempts, delivered_at, last_error from outbox where order_id = $1', [id]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ attempts: 1, delivered_at: null });
    return rows[0]!.last_error;
  }

  it('keeps the URL out of a refused connection, and still names the address', async () => {
    const url = `http://127.0.0.1:${await freePort()}${hookPath}`;
    const error = await failOnce(url);
    expectNoSecretIn(error, url);
    expect(error).toMatch(/^ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:\d+$/);
  });

  it('keeps the URL and its credentials out of the error fetch raises for a URL with a password', async () => {
    // Configuration refuses such a URL; the relay may be built without it, and fetch quotes the whole URL.
    const url = `http://relay:p4ssw0rd-x@127.0.0.1:${await freePort()}${hookPath}`;
    const error = await failOnce(url);
    expectNoSecretIn(error, url);
    expect(error).not.toContain('p4ssw0rd-x');
    expect(error).toContain('[redacted]');
  });

  it('keeps the URL and the secret out of what a receiver echoes back', async () => {
    const rx = await refusingReceiver((req) => `Cannot POST ${req.url}; signing secret here is ${SECRET}`);
    try {
      const url = `${rx.origin}${hookPath}`;
      const error = await failOnce(url);
      expectNoSecretIn(error, url);
      expect(error).toBe('HTTP 404: Cannot POST [redacted]; signing secret here is [redacted]');
    } finally {
      await rx.close();
    }
  });

  it('keeps a secret out even where the stored answer is cut', async () => {
    // 190 characters, then the token: the 200 kept characters end inside it.
    const rx = await refusingReceiver(() => `${'.'.repeat(190)}${TOKEN}`);
    try {
      const url = `${rx.origin}${hookPath}`;
      const error = await failOnce(url);
      expectNoSecretIn(error, url);
      expect(error).toBe(`HTTP 404: ${'.'.repeat(190)}[redacted]`);
    } finally {
      await rx.close();
    }
  });
});
