import type { AddressInfo } from 'node:net';
import { IdempotencyStore } from './idempotency.js';
import { apiRoutes, pageRoutes } from './routes.js';
import { createHttpServer } from './server.js';
import { EmulatorState } from './state.js';
import { DEFAULT_DELIVERY, type DeliverySettings, WebhookDispatcher } from './webhooks.js';

export type { DeliveryAttempt, DeliverySettings } from './webhooks.js';

export interface StripeEmulatorOptions {
  /** 0 = any free port; default 12111 (stripe-mock's port, so tools that know it find the emulator). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When given, registers one webhook endpoint for every event type at start. */
  webhookUrl?: string;
  /** Its secret (`whsec_…`); generated when absent. */
  webhookSecret?: string;
  /** Base for hosted-page urls; default http://<host>:<port>. */
  publicUrl?: string;
  /** Optional, default silent. */
  log?: (msg: string, data?: object) => void;
  /** Webhook retry timing; tests shorten it (it can also be changed through the chaos test helper). */
  delivery?: Partial<DeliverySettings>;
  /** Milliseconds since the epoch; tests move it forward to reach session expiry without waiting. */
  now?: () => number;
}

export interface RunningStripeEmulator {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Secret of the endpoint registered from options. */
  webhookSecret?: string;
  /** Stops the server and every pending delivery timer. */
  close(): Promise<void>;
}

const DEFAULT_PORT = 12111;
// How often sessions past `expires_at` are expired and old idempotency keys dropped.
const SWEEP_INTERVAL_MS = 1_000;

/** Starts a stateful, Stripe-compatible server that the official SDK can talk to over HTTP. */
export async function startStripeEmulator(opts: StripeEmulatorOptions = {}): Promise<RunningStripeEmulator> {
  const host = opts.host ?? '127.0.0.1';
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => {});
  let publicUrl = opts.publicUrl ?? '';

  const webhooks = new WebhookDispatcher({ now, log, delivery: { ...DEFAULT_DELIVERY, ...opts.delivery } });
  const state = new EmulatorState({
    now,
    publicUrl: () => publicUrl,
    publish: (event) => webhooks.publish(event),
  });
  const idempotency = new IdempotencyStore(now);
  const server = createHttpServer({
    api: apiRoutes(state, webhooks),
    pages: pageRoutes(state),
    idempotency,
    expandField: state.expandField,
    log,
  });

  // Registered before listening, so a bad URL fails the start without leaving a server behind.
  let webhookSecret: string | undefined;
  if (opts.webhookUrl) {
    try {
      const endpoint = webhooks.createEndpoint(
        { url: opts.webhookUrl, enabled_events: ['*'], description: 'registered at emulator start' },
        opts.webhookSecret,
      );
      webhookSecret = endpoint.secret;
    } catch (err) {
      throw new Error(`webhook url ${opts.webhookUrl}: ${(err as Error).message}`);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? DEFAULT_PORT, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const reachableHost =
    host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  const url = `http://${reachableHost}:${port}`;
  publicUrl = (opts.publicUrl ?? url).replace(/\/+$/, '');

  const sweeper = setInterval(() => {
    state.expireDue();
    idempotency.prune();
  }, SWEEP_INTERVAL_MS);
  sweeper.unref();

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    ...(webhookSecret ? { webhookSecret } : {}),
    close() {
      closing ??= (async () => {
        clearInterval(sweeper);
        await webhooks.close();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}
