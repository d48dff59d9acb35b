import Stripe from 'stripe';

/**
 * The one place the SDK is configured. The API version is pinned to the SDK's own, so an upgrade of the
 * account's default version on Stripe's side never changes the shapes this service reads.
 * `apiBase` points the SDK at an emulator (embedded or elsewhere) exactly as it would point at Stripe.
 */
export function createStripeClient(secretKey: string, apiBase?: string): Stripe {
  const base = apiBase ? new URL(apiBase) : undefined;
  return new Stripe(secretKey, {
    // Network retries reuse the same idempotency key, so they can never create a second object.
    maxNetworkRetries: 2,
    timeout: 20_000,
    ...(base
      ? {
          host: base.hostname,
          port: Number(base.port || (base.protocol === 'https:' ? 443 : 80)),
          protocol: base.protocol === 'https:' ? 'https' : 'http',
        }
      : {}),
  });
}

/** Any non-empty key works against the emulator; this one says where it came from. */
export const EMULATOR_SECRET_KEY = 'sk_test_emulator';
