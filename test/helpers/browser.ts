import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium; the browser tests never download a browser of their own. */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_MISSING = `Chromium not found at ${CHROMIUM_PATH}: install Debian's package (apt-get install chromium) to run the browser tests.`;

/**
 * Whether browser tests should run. Without Chromium they are skipped with one printed line, except under
 * CI, where they run and fail: a CI image without Chromium must not pass silently.
 */
export function browserTestsEnabled(): boolean {
  if (existsSync(CHROMIUM_PATH) || process.env['CI']) return true;
  console.log(`Browser tests skipped. ${CHROMIUM_MISSING}`);
  return false;
}

/** Headless Chromium with the flags a container needs (no sandbox, no GPU, no background traffic). */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) throw new Error(CHROMIUM_MISSING);
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
