import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromPg } from '../../src/adapters/postgres.js';
import { type App, buildApp } from '../../src/app.js';
import { composeInfra, type Infra } from '../../src/compose.js';
import { loadConfig } from '../../src/config.js';
import { createKey } from '../../src/modules/auth/index.js';
import { freePort } from '../helpers/cli.js';
import { openTestDb, type TestDb } from '../helpers/db.js';
import { postgresAvailable, TEST_DATABASE_URL, TEST_REDIS_URL } from '../helpers/services.js';
import { deliveryHeaders, events, orderFixture, signed } from '../helpers/stripe-events.js';

/**
 * A TCP proxy in front of the shared PostgreSQL, which this test may cut and restore: the server itself
 * serves other suites and is never stopped.
 */
class PostgresProxy {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    readonly target: { host: string; port: number },
  ) {}

  async start() {
    this.#server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    const server = this.#server;
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
  }

  /** Refuses new connections and drops the open ones, as a database host that went away would. */
  async cut() {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

const postgres = await postgresAvailable();

describe.runIf(postgres)('PostgreSQL unreachable', () => {
  let testDb: TestDb;
  let proxy: PostgresProxy;
  let infra: Infra;
  let app: App;
  let url: string;

  beforeAll(async () => {
    testDb = await openTestDb('postgres');
    const target = new URL(TEST_DATABASE_URL);
    proxy = new PostgresProxy(await freePort(), { host: target.hostname, port: Number(target.port || 5432) });
    await proxy.start();
    const viaProxy = new URL(TEST_DATABASE_URL);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const port = await freePort();
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      PORT: String(port),
      STRIPE_EMULATOR_PORT: '0',
      REDIS_URL: TEST_REDIS_URL,
    });
    infra = await composeInfra(config, {
      db: fromPg({ connectionString: viaProxy.toString(), schema: testDb.schema! }),
      startEmulator: true,
    });
    app = await buildApp({ infra, logger: false });
    await app.listen({ port, host: '127.0.0.1' });
    url = config.publicUrl;
    // Stripe retries for days; the emulator is told to retry every fraction of a second instead.
    await infra.stripe.rawRequest('POST', '/v1/test_helpers/webhooks/chaos', {
      retry_base_ms: 200,
      max_attempts: 60,
    });
  });
  afterAll(async () => {
    await app?.close();
    await infra?.close();
    await proxy?.cut();
    await testDb?.close();
  });

  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`gave up waiting until ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('answers 503 and stores nothing while the database is gone; the emulator retries then complete the work', async () => {
    const { key } = await createKey(testDb.db, { role: 'service' });
    const created = await app.inject({
      method: 'POST',
      url: '/v1/checkout/sessions',
      headers: { authorization: `Bearer ${key}`, 'idempotency-key': 'pg-outage-1' },
      payload: {
        order_id: 'ord_pg_outage',
        currency: 'usd',
        customer_email: 'buyer@example.com',
        line_items: [{ name: 'Mug', unit_amount: 1200, quantity: 2 }],
      },
    });
    expect(created.statusCode).toBe(201);
    const session = created.json() as { id: string };

    await proxy.cut();
    const fx = orderFixture({ id: 'ord_pg_outage', amount: 2400, sessionId: session.id });
    const { payload, header } = signed(events.completed(fx), infra.webhookSecrets[0]!);
    const refused = await fetch(`${url}/webhooks/stripe`, {
      method: 'POST',
      headers: deliveryHeaders(header),
      body: payload,
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('service_unavailable');

    await infra.stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${session.id}/complete`, {
      outcome: 'paid',
    });
    const attempts = async () =>
      (
        (await infra.stripe.rawRequest('GET', '/v1/test_helpers/deliveries')) as unknown as {
          data: Array<{ event_type: string; status: string; response_status: number | null }>;
        }
      ).data.filter((a) => a.event_type === 'checkout.session.completed');
    await until('the emulator saw a 503', async () =>
      (await attempts()).some((a) => a.response_status === 503),
    );
    expect((await attempts()).some((a) => a.status === 'succeeded')).toBe(false);
    expect((await testDb.db.query('select id from stripe_events')).rows).toEqual([]);

    await proxy.start();
    const status = async () =>
      (await testDb.db.query<{ status: string }>(`select status from orders where id = 'ord_pg_outage'`))
        .rows[0]?.status;
    await until('the order is paid', async () => (await status()) === 'paid');
    await until('the completed event is applied', async () =>
      (await attempts()).some((a) => a.status === 'succeeded'),
    );
    const inbox = await testDb.db.query<{ type: string; status: string }>(
      `select type, status from stripe_events where type in ('checkout.session.completed', 'payment_intent.succeeded') order by type`,
    );
    expect(inbox.rows).toEqual([
      { type: 'checkout.session.completed', status: 'done' },
      { type: 'payment_intent.succeeded', status: 'done' },
    ]);
    const paid = await testDb.db.query(
      `select seq from order_events where order_id = 'ord_pg_outage' and to_status = 'paid'`,
    );
    expect(paid.rows).toHaveLength(1);
  }, 60_000);
});

if (!postgres)
  console.warn('SKIPPED: the PostgreSQL outage test needs a PostgreSQL server to put a proxy in front of');
