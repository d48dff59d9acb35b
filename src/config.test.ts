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
      for (const name of ['DATABASE_URL', 'STRIPE_SECRET_KEY', 'STRIPE_WEBHOOK_SECRET', 'REFERRAL_IP_SALT'])
        expect(text).toContain(name);
    }
  });

  it('starts in production when everything is given', () => {
    const c = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: 'postgres://db/payments',
      STRIPE_SECRET_KEY: 'sk_live_abc',
      STRIPE_WEBHOOK_SECRET: 'whsec_abc',
      REFERRAL_IP_SALT: 'a-salt-of-16-chars',
    });
    expect(c.embeddedEmulator).toBe(false);
  });

  it('refuses a Stripe key of the wrong kind', () => {
    expect(() => loadConfig({ STRIPE_SECRET_KEY: 'pk_test_abc' })).toThrow(/STRIPE_SECRET_KEY/);
  });
});

describe('URL settings', () => {
  /** The problems loadConfig reports for `env`, or [] when it accepts it. */
  const problemsOf = (env: Record<string, string>): string[] => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
  };
  const production = {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://payments:pw@db/payments',
    STRIPE_SECRET_KEY: 'sk_live_abc',
    STRIPE_WEBHOOK_SECRET: 'whsec_abc',
    ORDERS_WEBHOOK_SECRET: 'whsec_orders',
    REFERRAL_IP_SALT: 'a-salt-of-16-chars',
  };

  it('refuses an ORDERS_WEBHOOK_URL scheme other than http: and https:', () => {
    for (const url of ['ftp://orders.internal/hook', 'file:///etc/passwd', 'javascript:alert(1)'])
      expect(problemsOf({ ORDERS_WEBHOOK_URL: url, ORDERS_WEBHOOK_SECRET: 'whsec_x' })).toEqual([
        'ORDERS_WEBHOOK_URL must be an http: or https: URL',
      ]);
    expect(problemsOf({ ORDERS_WEBHOOK_URL: 'not a url', ORDERS_WEBHOOK_SECRET: 'whsec_x' })).toEqual([
      'ORDERS_WEBHOOK_URL must be a URL',
    ]);
  });

  it('refuses credentials in ORDERS_WEBHOOK_URL, STRIPE_API_BASE and PUBLIC_URL, without repeating them', () => {
    const problems = problemsOf({
      ORDERS_WEBHOOK_URL: 'https://orders:hunter2@orders.example/hook',
      ORDERS_WEBHOOK_SECRET: 'whsec_x',
      STRIPE_API_BASE: 'http://tok3n@127.0.0.1:12111',
      PUBLIC_URL: 'https://admin:pa55@payments.example',
    });
    expect(problems).toEqual([
      'ORDERS_WEBHOOK_URL must not carry a username or password',
      'STRIPE_API_BASE must not carry a username or password',
      'PUBLIC_URL must not carry a username or password',
    ]);
    for (const secret of ['hunter2', 'tok3n', 'pa55']) expect(problems.join('\n')).not.toContain(secret);
  });

  it('checks STRIPE_API_BASE and PUBLIC_URL schemes too', () => {
    expect(problemsOf({ STRIPE_API_BASE: 'ws://127.0.0.1:12111', PUBLIC_URL: 'ftp://payments' })).toEqual([
      'STRIPE_API_BASE must be an http: or https: URL',
      'PUBLIC_URL must be an http: or https: URL',
    ]);
  });

  it('refuses plain http ORDERS_WEBHOOK_URL in production unless the host is loopback', () => {
    expect(problemsOf({ ...production, ORDERS_WEBHOOK_URL: 'http://orders.internal/hook' })).toEqual([
      'ORDERS_WEBHOOK_URL must use https: in production (plain http: only to a loopback host)',
    ]);
    // 127.1 is how URL also reads 127.0.0.1; any address of 127.0.0.0/8 is loopback.
    const loopback = ['http://127.0.0.1:8080/hook', 'http://127.9.8.7/hook', 'http://127.1/hook'];
    for (const url of [...loopback, 'http://localhost:8080/hook', 'http://[::1]:8080/hook'])
      expect(problemsOf({ ...production, ORDERS_WEBHOOK_URL: url }), url).toEqual([]);
    for (const url of ['http://128.0.0.1/hook', 'http://localhost.evil.example/hook', 'http://[::2]/hook'])
      expect(problemsOf({ ...production, ORDERS_WEBHOOK_URL: url }), url).toHaveLength(1);
    expect(problemsOf({ ...production, ORDERS_WEBHOOK_URL: 'https://orders.example/hook' })).toEqual([]);
    // Outside production plain http is fine anywhere: a receiver on the developer's network.
    expect(
      problemsOf({ ORDERS_WEBHOOK_URL: 'http://orders.internal/hook', ORDERS_WEBHOOK_SECRET: 'whsec_x' }),
    ).toEqual([]);
  });

  it('names URL problems together with every other problem, at once', () => {
    const problems = problemsOf({
      ...production,
      STRIPE_SECRET_KEY: 'pk_live_abc',
      ORDERS_WEBHOOK_URL: 'http://user:pw@orders.internal/hook',
    });
    const text = problems.join('\n');
    expect(text).toContain('STRIPE_SECRET_KEY');
    expect(text).toContain('ORDERS_WEBHOOK_URL must not carry a username or password');
    expect(text).toContain('ORDERS_WEBHOOK_URL must use https: in production');

    const afterSchema = problemsOf({
      ...production,
      STRIPE_WEBHOOK_SECRET: '',
      ORDERS_WEBHOOK_URL: 'gopher://orders.internal',
    });
    expect(afterSchema).toEqual([
      'ORDERS_WEBHOOK_URL must be an http: or https: URL',
      'STRIPE_WEBHOOK_SECRET is required in production',
    ]);
  });
});
