import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningStripeEmulator, startStripeEmulator } from '../../stripe-emulator/index.js';
import { cliProcess, freePort } from '../helpers/cli.js';
import { BACKENDS, openTestDb, type TestDb, urlWithSchema } from '../helpers/db.js';
import { TEST_REDIS_URL } from '../helpers/services.js';

/**
 * What a flood of large unauthenticated requests costs the service: nothing that would slow a healthy request.
 * Measured as an operator would: `payments-service serve` in a process of its own, the flood from another,
 * the probes from here. A latency bound, so this file runs in the `alone` project, after every other test,
 * with the machine to itself (vitest.config.ts).
 */

const SECRET = 'whsec_quiet_under_flood_suite';
const MIB = 1024 * 1024;

/** One request over a fresh connection; resolves with the status once the whole answer is in. */
function send(
  url: string,
  opts: { method: string; path: string; headers?: Record<string, string>; body?: Buffer },
): Promise<{ status: number; headers: Record<string, unknown>; body: string; ms: number }> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(`${url}${opts.path}`, { method: opts.method, headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          ms: performance.now() - started,
        }),
      );
    });
    // The server may answer (401, 413) before it reads the body; the rest of it is then refused.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET')
        resolve({ status: -1, headers: {}, body: '', ms: 0 });
      else reject(err);
    });
    req.end(opts.body);
  });
}

/**
 * `clients` connections sending requests of 1 MiB with an Idempotency-Key and no API key, `rounds` each, one
 * after another, half of them to the webhook route and half to an API route, from a child process (as from
 * outside). The body is JSON that would take long to canonicalise: a million small objects. `answers` holds
 * each request's path and status (-1: the connection was cut mid-body).
 */
function flood(url: string, clients: number, rounds: number) {
  const script = `
    const http = require('node:http');
    const [url, clients, rounds] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
    const body = Buffer.from('[' + '{"a":1},'.repeat(${MIB / 8 - 2}) + '{"a":1}]');
    const answers = [];
    const once = (path, i) => new Promise((resolve) => {
      const done = (status) => resolve(answers.push({ path, status }));
      const headers = {
        'content-type': 'application/json',
        'idempotency-key': 'flood-' + i,
        'stripe-signature': 't=1,v1=00',
      };
      const req = http.request(url + path, { method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', () => done(res.statusCode));
      });
      req.on('error', () => done(-1));
      req.end(body);
    });
    const client = async (c) => {
      const path = c % 2 === 0 ? '/webhooks/stripe' : '/v1/checkout/sessions';
      for (let r = 0; r < rounds; r++) await once(path, c * rounds + r);
    };
    console.log('ready');
    Promise.all(Array.from({ length: clients }, (_, c) => client(c))).then(() =>
      console.log(JSON.stringify(answers)),
    );`;
  const child = spawn(process.execPath, ['-e', script, url, String(clients), String(rounds)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const started = new Promise<void>((resolve) => lines.once('line', () => resolve()));
  const answers = new Promise<Array<{ path: string; status: number }>>((resolve) =>
    lines.on('line', (line) => {
      if (line.startsWith('[')) resolve(JSON.parse(line));
    }),
  );
  return { started, answers };
}

const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.ceil(values.length * 0.99) - 1]!;

async function waitForHealth(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('serve did not come up');
}

describe.each(BACKENDS)('a flood of unauthenticated requests on %s', (backend) => {
  let testDb: TestDb | undefined;
  let emulator: RunningStripeEmulator;
  let serve: ReturnType<typeof cliProcess>;
  let url: string;
  const dataDir = mkdtempSync(join(tmpdir(), 'flood-'));

  beforeAll(async () => {
    emulator = await startStripeEmulator({ port: 0 });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    let database: Record<string, string> = { DATA_DIR: dataDir };
    if (backend === 'postgres') {
      testDb = await openTestDb(backend);
      database = { DATABASE_URL: urlWithSchema(testDb.schema!), REDIS_URL: TEST_REDIS_URL };
    }
    serve = cliProcess(['serve'], {
      ...database,
      STRIPE_API_BASE: emulator.url,
      STRIPE_WEBHOOK_SECRET: SECRET,
      PORT: String(port),
    });
    await waitForHealth(url);
    // The periodic jobs (reconciliation, commission approval, the key sweeper) make their first run at start;
    // on PGlite their queries share the event loop with /healthz. Measured once they have settled.
    await new Promise((r) => setTimeout(r, 5_000));
  });
  afterAll(async () => {
    serve?.kill('SIGTERM');
    await new Promise((r) => serve?.once('exit', r));
    await emulator?.close();
    await testDb?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('spends nothing on 1 MiB unauthenticated requests: /healthz stays fast, nothing is fingerprinted', async () => {
    // A first flood warms the service up (compiles its code paths), as earlier traffic would have.
    await flood(url, 20, 1).answers;
    const flooding = flood(url, 20, 12);
    await flooding.started;
    const probes: number[] = [];
    let over = false;
    void flooding.answers.then(() => {
      over = true;
    });
    // One probe at a time, as a load balancer's would come: a pause of the service (a PGlite checkpoint, a
    // periodic job's query on the same event loop) then costs one sample, not several.
    const probe = async () => {
      while (!over) probes.push((await send(url, { method: 'GET', path: '/healthz' })).ms);
    };
    await probe();
    const answers = await flooding.answers;

    // The webhook refuses the signature header before reading the body, the API the missing key. Either may
    // cut the connection while the client is still sending (-1), but none answers anything else.
    const webhook = answers.filter((a) => a.path === '/webhooks/stripe');
    expect(webhook).toHaveLength(120);
    expect(webhook.every((a) => a.status === 400 || a.status === -1)).toBe(true);
    expect(webhook.filter((a) => a.status === 400).length).toBeGreaterThan(60);
    const api = answers.filter((a) => a.path !== '/webhooks/stripe');
    expect(api.every((a) => a.status === 401 || a.status === -1)).toBe(true);
    // Nothing of them was kept: no Idempotency-Key was claimed.
    if (testDb) {
      const { rows } = await testDb.db.query<{ n: number }>(
        'select count(*)::integer as n from idempotency_keys',
      );
      expect(rows[0]!.n).toBe(0);
    }
    expect(probes.length).toBeGreaterThan(100);
    expect(p99(probes)).toBeLessThan(50);
  });
});
