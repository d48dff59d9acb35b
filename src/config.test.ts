import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('runs on embedded defaults with nothing set', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      publicUrl: 'http://127.0.0.1:3000',
      dataDir: './.data',
    });
    expect(c.embeddedEmulator).toBe(true);
    expect(c.webhookToleranceSeconds).toBe(300);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('splits rotated webhook secrets', () => {
    expect(loadConfig({ STRIPE_WEBHOOK_SECRET: 'whsec_new, whsec_old' }).webhookSecrets).toEqual([
      'whsec_new',
      'whsec_old',
    ]);
  });

  it('refuses a zero tolerance', () => {
    expect(() => loadConfig({ STRIPE_WEBHOOK_TOLERANCE_SECONDS: '0' })).toThrow(ConfigError);
  });

  it('names every variable production is missing, at once', () => {
    try {
      loadConfig({ NODE_ENV: 'production' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const text = (err as ConfigError).problems.join('\n');
      for (const name of ['DATABASE_URL', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET'])
        expect(text).toContain(name);
    }
  });

  it('starts in production when everything is given', () => {
    const c = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://db/payments',
      STRIPE_SECRET_KEY: 'sk_live_abc',
      STRIPE_WEBHOOK_SECRET: 'whsec_abc',
    });
    expect(c.embeddedEmulator).toBe(false);
  });

  it('refuses a Stripe key of the wrong kind', () => {
    expect(() => loadConfig({ STRIPE_SECRET_KEY: 'pk_test_abc' })).toThrow(/STRIPE_SECRET_KEY/);
  });
});
