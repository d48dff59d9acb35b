import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { packageRoot } from '../../src/shared/paths.js';

/** Where the browser tests leave a screenshot of each view (git-ignored). */
export const SCREENSHOTS = join(packageRoot(), 'test-results', 'screenshots');

/** A page whose console errors and uncaught exceptions are collected, to be asserted empty. */
export async function watchedPage(
  target: Browser | BrowserContext,
  errors: string[],
  viewport = { width: 1100, height: 900 },
): Promise<Page> {
  const page = await target.newPage({ viewport });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`${page.url()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`${page.url()}: ${e.message}`));
  return page;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Signs in on the dashboard's form with an API key (the bare key, without "Bearer "). */
export async function signIn(page: Page, baseUrl: string, key: string): Promise<void> {
  await page.goto(`${baseUrl}/dashboard/sign-in`);
  await page.getByLabel(/API key/).fill(key.replace(/^Bearer /, ''));
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${baseUrl}/dashboard`);
}

/** Completes a Checkout Session on the emulator as a buyer would, with a card of its own. */
export async function payOnEmulator(
  emulatorUrl: string,
  sessionId: string,
  extra: Record<string, string> = {},
) {
  const body = new URLSearchParams({
    outcome: 'paid',
    card_fingerprint: `fp_${sessionId.slice(-10)}`,
    ...extra,
  });
  const res = await fetch(`${emulatorUrl}/v1/test_helpers/checkout/sessions/${sessionId}/complete`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk_test_browser', 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  if (!res.ok) throw new Error(`the emulator refused to complete ${sessionId}: ${res.status}`);
}
