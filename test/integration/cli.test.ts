import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadMigrations } from '../../src/db/migrate.js';
import { cliProcess, freePort, runCli } from '../helpers/cli.js';
import { BACKENDS, openTestDb, urlWithSchema } from '../helpers/db.js';
import { TEST_DATABASE_URL } from '../helpers/services.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'payments-cli-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('payments-service CLI', () => {
  it('refuses to serve in production with nothing configured, naming each missing variable', async () => {
    const res = await runCli(['serve'], { NODE_ENV: 'production' });
    expect(res.code).not.toBe(0);
    for (const name of ['DATABASE_URL', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'])
      expect(res.stderr).toContain(name);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('creates a key with --json and refuses a bad role', { timeout: 90_000 }, async () => {
    const dataDir = tempDir();
    const res = await runCli(['keys', 'create', '--role', 'admin', '--json'], { DATA_DIR: dataDir });
    expect(res.code).toBe(0);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const created = JSON.parse(lines[0] ?? '');
    expect(Object.keys(created).sort()).toEqual(['id', 'key', 'role']);
    expect(created.role).toBe('admin');
    const bad = await runCli(['keys', 'create', '--role', 'root'], { DATA_DIR: dataDir });
    expect(bad.code).not.toBe(0);
  });

  it('serves /healthz and /readyz on the embedded defaults, prints its URLs and exits 0 on SIGTERM', {
    timeout: 120_000,
  }, async () => {
    const [port, emulatorPort] = [await freePort(), await freePort()];
    const child = cliProcess(['serve'], {
      DATA_DIR: tempDir(),
      PORT: String(port),
      STRIPE_EMULATOR_PORT: String(emulatorPort),
    });
    let stdout = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const base = `http://127.0.0.1:${port}`;
    // Generous: a fresh PGlite data directory is created here while other suites load both cores.
    const deadline = Date.now() + 75_000;
    let ready = 0;
    while (Date.now() < deadline) {
      ready = await fetch(`${base}/readyz`).then(
        (r) => r.status,
        () => 0,
      );
      if (ready === 200) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(ready).toBe(200);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 200));
    expect(stdout).toContain(`${base}/docs`);
    expect(stdout).toContain(`http://127.0.0.1:${emulatorPort}`);
    expect(stdout).toMatch(/demo admin key: +psk_/);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe.skipIf(!BACKENDS.includes('postgres'))('migrate on PostgreSQL', () => {
  it('applies every migration once when two run at the same moment', { timeout: 90_000 }, async () => {
    const { schema, close } = await openTestDb('postgres', { migrate: false });
    try {
      const env = { DATABASE_URL: urlWithSchema(schema ?? '') };
      const [a, b] = await Promise.all([runCli(['migrate'], env), runCli(['migrate'], env)]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
      await client.connect();
      const { rows } = await client.query(`select version from ${schema}.schema_migrations order by version`);
      await client.end();
      expect(rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
      expect([a.stdout, b.stdout].filter((s) => s.includes('nothing to apply'))).toHaveLength(1);
    } finally {
      await close();
    }
  });
});

describe('payments-service stripe-emulator', () => {
  it('runs standalone and delivers signed webhooks to --webhook-url', { timeout: 60_000 }, async () => {
    const { startWebhookReceiver } = await import('../../stripe-emulator/testing.js');
    const Stripe = (await import('stripe')).default;
    const receiver = await startWebhookReceiver();
    const port = await freePort();
    const secret = 'whsec_standalone_test_secret';
    const child = cliProcess([
      'stripe-emulator',
      '--port',
      String(port),
      '--webhook-url',
      receiver.url,
      '--webhook-secret',
      secret,
    ]);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const stripe = new Stripe('sk_test_cli', { host: '127.0.0.1', port, protocol: 'http' });
      let session: Awaited<ReturnType<typeof stripe.checkout.sessions.create>> | undefined;
      for (let i = 0; i < 100 && !session; i++) {
        session = await stripe.checkout.sessions
          .create({
            mode: 'payment',
            success_url: 'https://shop.example/ok',
            line_items: [
              {
                quantity: 1,
                price_data: { currency: 'usd', unit_amount: 1200, product_data: { name: 'Mug' } },
              },
            ],
          })
          .catch(async () => {
            await new Promise((r) => setTimeout(r, 200));
            return undefined;
          });
      }
      expect(session?.id).toMatch(/^cs_/);
      await stripe.rawRequest('POST', `/v1/test_helpers/checkout/sessions/${session?.id}/complete`, {
        outcome: 'paid',
      });
      await receiver.waitFor((r) => r.some((d) => d.eventType === 'checkout.session.completed'));
      const delivery = receiver.received.find((d) => d.eventType === 'checkout.session.completed');
      const event = stripe.webhooks.constructEvent(
        delivery?.rawBody ?? '',
        delivery?.signature ?? '',
        secret,
      );
      expect(event.type).toBe('checkout.session.completed');
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await receiver.close();
    }
  });
});
