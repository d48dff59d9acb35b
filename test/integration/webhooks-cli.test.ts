import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('payments-service events and reconcile commands', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'payments-webhooks-cli-'));
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { DATA_DIR: join(dataDir, 'data') };

  it('fails with one line when reconcile has no Stripe to ask, or a window past 30 days', async () => {
    const noStripe = await runCli(['reconcile'], env);
    expect(noStripe.code).toBe(1);
    expect(noStripe.stderr).toBe(
      'payments-service: this needs STRIPE_SECRET_KEY or STRIPE_API_BASE (the embedded emulator lives only inside serve)\n',
    );
    const tooFar = await runCli(['reconcile', '--since', '45d', '--json'], {
      ...env,
      STRIPE_API_BASE: 'http://127.0.0.1:9',
    });
    expect(tooFar.code).toBe(1);
    expect(tooFar.stderr).toBe(
      'payments-service: --since reaches past 30d, the oldest events Stripe keeps\n',
    );
  });

  it('refuses an unknown status for events list', async () => {
    const bad = await runCli(['events', 'list', '--status', 'lost'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Allowed choices are pending, deferred, done, ignored, failed/);
  });
});
