import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { browserTestsEnabled, launchBrowser } from '../helpers/browser.js';
import { cliProcess, freePort } from '../helpers/cli.js';
import { screenshot, signIn, watchedPage } from '../helpers/pages.js';

/**
 * `payments-service serve` on the embedded defaults, as `npm start` runs it, in a data directory of its own:
 * the storefront at `/`, the demo data seeded once through the real paths, the printed demo keys opening the
 * dashboard, and a restart that neither seeds again nor keeps the old keys working.
 */

interface Started {
  child: ChildProcess;
  stdout: () => string;
  exited: Promise<number | null>;
}

function start(env: Record<string, string>): Started {
  const child = cliProcess(['serve'], env);
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, stdout: () => out, exited };
}

async function until<T>(what: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await what().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(250);
  }
  throw new Error('timed out');
}

const keyAfter = (stdout: string, label: string) =>
  new RegExp(`${label}[^:]*: +(psk_[A-Za-z0-9]+)`).exec(stdout)?.[1];

interface Listed {
  status: string;
  entries: Array<{ type: string }>;
}

describe.skipIf(!browserTestsEnabled())('npm start: serve on the embedded defaults with demo data', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ps-demo-'));
  let env: Record<string, string>;
  let base: string;
  let browser: Browser;
  let serve: Started | undefined;

  const commissions = async (key: string) => {
    const res = await fetch(`${base}/v1/commissions?limit=100`, {
      headers: { authorization: `Bearer ${key}` },
    });
    return res.ok ? ((await res.json()) as { data: Listed[] }).data : undefined;
  };
  const boot = async () => {
    serve = start(env);
    const keys = await until(async () => {
      const admin = keyAfter(serve!.stdout(), 'demo admin key');
      const affiliate = keyAfter(serve!.stdout(), 'demo affiliate key');
      return admin && affiliate ? { admin, affiliate } : undefined;
    });
    return keys;
  };
  const stop = async () => {
    serve?.child.kill('SIGTERM');
    expect(await serve?.exited).toBe(0);
  };

  beforeAll(async () => {
    const [port, emulatorPort] = [await freePort(), await freePort()];
    env = { DATA_DIR: dataDir, PORT: String(port), STRIPE_EMULATOR_PORT: String(emulatorPort) };
    base = `http://127.0.0.1:${port}`;
    browser = await launchBrowser();
  });
  // Each test stops the service it started, whatever happened, so the next may use the ports.
  afterEach(async () => {
    if (serve && serve.child.exitCode === null) {
      serve.child.kill('SIGKILL');
      await serve.exited;
    }
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints its URLs and keys, serves the storefront and shows the seeded data in the dashboard', {
    timeout: 150_000,
  }, async () => {
    const keys = await boot();
    const out = serve!.stdout();
    for (const url of [
      `${base}/`,
      `${base}/dashboard`,
      `${base}/docs`,
      `http://127.0.0.1:${env.STRIPE_EMULATOR_PORT}`,
    ])
      expect(out).toContain(url);
    // Seeding goes on after the start: ten referred orders, settled by the emulator's webhooks.
    const all = await until(async () => {
      const listed = await commissions(keys.admin);
      return listed &&
        listed.length === 10 &&
        !listed.some((c) => c.status === 'pending' && c.entries.length === 0)
        ? listed
        : undefined;
    });
    await until(async () =>
      (await commissions(keys.admin))?.filter((c) => c.status === 'approved').length ? true : undefined,
    );
    const statuses = (await commissions(keys.admin))!.map((c) => c.status);
    expect(all).toHaveLength(10);
    for (const s of ['paid', 'approved', 'on_hold', 'reversed', 'pending']) expect(statuses).toContain(s);
    const entryTypes = all.flatMap((c) => c.entries.map((e) => e.type));
    expect(entryTypes).toContain('reversal');
    expect(entryTypes).toContain('payout');

    const errors: string[] = [];
    const page = await watchedPage(browser, errors);
    await page.goto(`${base}/`);
    expect(await page.locator('h1').textContent()).toBe('Demo shop');
    await signIn(page, base, keys.admin);
    expect(await page.locator('[data-testid=leaderboard] tbody tr').count()).toBe(2);
    expect(await page.locator('[data-testid=review-queue] > li').count()).toBe(1);
    expect(await page.locator('[data-testid=audit-status]').getAttribute('data-ok')).toBe('true');
    await screenshot(page, 'demo-admin');
    const ada = await watchedPage(await browser.newContext(), errors);
    await signIn(ada, base, keys.affiliate);
    await expect.poll(() => ada.getByTestId('earnings-chart').getAttribute('data-rendered')).toBe('true');
    expect(Number(await ada.getByTestId('earnings-chart').getAttribute('data-points'))).toBeGreaterThan(3);
    await screenshot(ada, 'demo-affiliate');
    expect(errors).toEqual([]);
    await stop();
  });

  it('a restart seeds nothing again and replaces the demo keys', { timeout: 150_000 }, async () => {
    const previous = keyAfter(serve!.stdout(), 'demo admin key');
    expect(previous).toMatch(/^psk_/);
    const keys = await boot();
    expect(keys.admin).not.toBe(previous);
    await until(async () => ((await fetch(`${base}/readyz`)).ok ? true : undefined));
    expect(await commissions(previous!)).toBeUndefined();
    await sleep(1_000);
    expect(await commissions(keys.admin)).toHaveLength(10);
    await stop();
  });
});
