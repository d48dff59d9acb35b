import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type Stripe from 'stripe';
import { invalidParam, noSuch } from './errors.js';
import { newId, newWebhookSecret } from './ids.js';
import { type ListPage, paginate } from './lists.js';
import { buildWebhookEndpoint } from './objects.js';
import {
  asBool,
  asInt,
  asMetadata,
  asNumber,
  asString,
  asStringArray,
  type Params,
  rejectUnknown,
  required,
} from './params.js';

/** How deliveries are retried. Stripe retries for days; the emulator keeps it to minutes by default. */
export interface DeliverySettings {
  /** Delay before the first retry; each later retry doubles it. */
  retryBaseMs: number;
  /** Upper bound of one retry delay. */
  maxDelayMs: number;
  /** Attempts per event and endpoint, the first one included. */
  maxAttempts: number;
  /** An attempt without a response after this long counts as failed. */
  timeoutMs: number;
}

// 1 s doubling to a 60 s cap over 10 attempts gives a receiver about six minutes to come back: long enough
// to restart a service during a demo, short enough that a dead endpoint stops costing work.
export const DEFAULT_DELIVERY: DeliverySettings = {
  retryBaseMs: 1_000,
  maxDelayMs: 60_000,
  maxAttempts: 10,
  timeoutMs: 10_000,
};

/** Faults injected into delivery, for tests of a receiver's duplicate and ordering handling. */
export interface ChaosSettings {
  /** Chance (0..1) that an event is delivered a second, independent time. */
  duplicate_probability: number;
  /** Events created within this window are held back and delivered together in a shuffled order. */
  reorder_window_ms: number;
  /** Added before every first attempt. */
  delay_ms: number;
  /** The first N attempts of every delivery fail without reaching the endpoint. */
  fail_first_attempts: number;
}

const NO_CHAOS: ChaosSettings = {
  duplicate_probability: 0,
  reorder_window_ms: 0,
  delay_ms: 0,
  fail_first_attempts: 0,
};

/** One attempt to deliver one event to one endpoint, as `GET /v1/test_helpers/deliveries` lists it. */
export interface DeliveryAttempt {
  id: string;
  object: 'webhook_delivery_attempt';
  event_id: string;
  event_type: string;
  endpoint_id: string;
  url: string;
  attempt: number;
  duplicate: boolean;
  status: 'succeeded' | 'failed';
  response_status: number | null;
  error: string | null;
  /** Unix seconds, like every Stripe timestamp. */
  created: number;
  duration_ms: number;
}

// The log is for tests and demos; a cap keeps a long-running emulator from growing without bound.
const MAX_LOGGED_ATTEMPTS = 10_000;
// Stripe reads at most this much of a receiver's answer; the emulator only needs the status.
const MAX_RESPONSE_BYTES = 64 * 1024;

interface EndpointRecord {
  endpoint: Stripe.WebhookEndpoint;
  secret: string;
}

interface Job {
  event: Stripe.Event;
  endpointId: string;
  attempts: number;
  duplicate: boolean;
  /** Whether success should lower the event's `pending_webhooks` (false for duplicates and resends). */
  counts: boolean;
}

export interface DispatcherDeps {
  now: () => number;
  log: (msg: string, data?: object) => void;
  delivery: DeliverySettings;
}

/**
 * Delivers events to webhook endpoints the way Stripe does: asynchronously, signed with the endpoint's
 * secret, retried with exponential backoff on anything but a 2xx.
 */
export class WebhookDispatcher {
  private readonly endpoints = new Map<string, EndpointRecord>();
  private readonly attempts: DeliveryAttempt[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inflight = new Set<http.ClientRequest>();
  private readonly running = new Set<Promise<void>>();
  private reorderBuffer: Job[] = [];
  private reorderTimer: NodeJS.Timeout | undefined;
  private chaos: ChaosSettings = { ...NO_CHAOS };
  private delivery: DeliverySettings;
  private closed = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.delivery = { ...deps.delivery };
  }

  createEndpoint(params: Params, secret?: string): Stripe.WebhookEndpoint {
    rejectUnknown(params, ['url', 'enabled_events', 'description', 'metadata', 'api_version']);
    const url = required(asString(params['url'], 'url'), 'url');
    checkUrl(url);
    const enabledEvents = required(
      asStringArray(params['enabled_events'], 'enabled_events'),
      'enabled_events',
    );
    if (enabledEvents.length === 0) throw invalidParam('enabled_events must not be empty.', 'enabled_events');
    const endpoint = buildWebhookEndpoint({
      created: Math.floor(this.deps.now() / 1000),
      url,
      enabledEvents,
      description: asString(params['description'], 'description') ?? null,
      metadata: asMetadata(params['metadata'], 'metadata') ?? {},
      apiVersion: asString(params['api_version'], 'api_version') ?? null,
    });
    const record = { endpoint, secret: secret ?? newWebhookSecret() };
    this.endpoints.set(endpoint.id, record);
    // Stripe reveals the secret only in the response that creates the endpoint.
    return { ...endpoint, secret: record.secret };
  }

  getEndpoint(id: string): Stripe.WebhookEndpoint {
    const record = this.endpoints.get(id);
    if (!record) throw noSuch('webhook_endpoint', id, 'webhook_endpoint');
    return record.endpoint;
  }

  updateEndpoint(id: string, params: Params): Stripe.WebhookEndpoint {
    rejectUnknown(params, ['url', 'enabled_events', 'description', 'metadata', 'disabled']);
    const endpoint = this.getEndpoint(id);
    const url = asString(params['url'], 'url');
    if (url !== undefined) {
      checkUrl(url);
      endpoint.url = url;
    }
    const enabledEvents = asStringArray(params['enabled_events'], 'enabled_events');
    if (enabledEvents !== undefined) endpoint.enabled_events = enabledEvents;
    const description = asString(params['description'], 'description');
    if (description !== undefined) endpoint.description = description;
    const metadata = asMetadata(params['metadata'], 'metadata');
    if (metadata !== undefined) endpoint.metadata = { ...endpoint.metadata, ...metadata };
    const disabled = asBool(params['disabled'], 'disabled');
    if (disabled !== undefined) endpoint.status = disabled ? 'disabled' : 'enabled';
    return endpoint;
  }

  deleteEndpoint(id: string): { id: string; object: 'webhook_endpoint'; deleted: true } {
    this.getEndpoint(id);
    this.endpoints.delete(id);
    return { id, object: 'webhook_endpoint', deleted: true };
  }

  listEndpoints(params: Params): ListPage<Stripe.WebhookEndpoint> {
    rejectUnknown(params, ['limit', 'starting_after', 'ending_before']);
    const items = [...this.endpoints.values()].reverse().map((r) => r.endpoint);
    return paginate(items, params, '/v1/webhook_endpoints');
  }

  configure(params: Params): ChaosSettings & Record<string, number | string> {
    rejectUnknown(params, [
      'duplicate_probability',
      'reorder_window_ms',
      'delay_ms',
      'fail_first_attempts',
      'retry_base_ms',
      'max_attempts',
      'timeout_ms',
      'reset',
    ]);
    const chaos = asBool(params['reset'], 'reset') ? { ...NO_CHAOS } : { ...this.chaos };
    const delivery = asBool(params['reset'], 'reset') ? { ...this.deps.delivery } : { ...this.delivery };
    chaos.duplicate_probability =
      asNumber(params['duplicate_probability'], 'duplicate_probability', 0, 1) ?? chaos.duplicate_probability;
    chaos.reorder_window_ms = bounded(params, 'reorder_window_ms', 0, 60_000) ?? chaos.reorder_window_ms;
    chaos.delay_ms = bounded(params, 'delay_ms', 0, 60_000) ?? chaos.delay_ms;
    chaos.fail_first_attempts = bounded(params, 'fail_first_attempts', 0, 100) ?? chaos.fail_first_attempts;
    delivery.retryBaseMs = bounded(params, 'retry_base_ms', 1, 3_600_000) ?? delivery.retryBaseMs;
    delivery.maxAttempts = bounded(params, 'max_attempts', 1, 100) ?? delivery.maxAttempts;
    delivery.timeoutMs = bounded(params, 'timeout_ms', 1, 120_000) ?? delivery.timeoutMs;
    this.chaos = chaos;
    this.delivery = delivery;
    return this.settings();
  }

  settings(): ChaosSettings & Record<string, number | string> {
    return {
      object: 'webhook_chaos',
      ...this.chaos,
      retry_base_ms: this.delivery.retryBaseMs,
      max_attempts: this.delivery.maxAttempts,
      timeout_ms: this.delivery.timeoutMs,
    };
  }

  listAttempts(params: Params): ListPage<DeliveryAttempt> {
    rejectUnknown(params, ['event_id', 'endpoint_id']);
    const eventId = asString(params['event_id'], 'event_id');
    const endpointId = asString(params['endpoint_id'], 'endpoint_id');
    const data = this.attempts.filter(
      (a) =>
        (eventId === undefined || a.event_id === eventId) &&
        (endpointId === undefined || a.endpoint_id === endpointId),
    );
    return { object: 'list', data, has_more: false, url: '/v1/test_helpers/deliveries' };
  }

  /** Queues a new event for every enabled endpoint that listens to its type. */
  publish(event: Stripe.Event): void {
    const targets = this.targets(event);
    event.pending_webhooks = targets.length;
    const jobs: Job[] = [];
    for (const endpointId of targets) {
      jobs.push({ event, endpointId, attempts: 0, duplicate: false, counts: true });
      if (Math.random() < this.chaos.duplicate_probability) {
        jobs.push({ event, endpointId, attempts: 0, duplicate: true, counts: false });
      }
    }
    this.dispatch(jobs);
  }

  /** Delivers a stored event again, to one endpoint or to every one that listens to it. */
  resend(event: Stripe.Event, params: Params): number {
    rejectUnknown(params, ['webhook_endpoint']);
    const endpointId = asString(params['webhook_endpoint'], 'webhook_endpoint');
    if (endpointId !== undefined) this.getEndpoint(endpointId);
    const targets = endpointId === undefined ? this.targets(event) : [endpointId];
    this.dispatch(
      targets.map((id) => ({ event, endpointId: id, attempts: 0, duplicate: false, counts: false })),
    );
    return targets.length;
  }

  private targets(event: Stripe.Event): string[] {
    return [...this.endpoints.values()]
      .filter(
        (r) =>
          r.endpoint.status === 'enabled' &&
          r.endpoint.enabled_events.some((e) => e === '*' || e === event.type),
      )
      .map((r) => r.endpoint.id);
  }

  private dispatch(jobs: Job[]): void {
    if (this.closed || jobs.length === 0) return;
    if (this.chaos.reorder_window_ms > 0) {
      this.reorderBuffer.push(...jobs);
      if (!this.reorderTimer) {
        this.reorderTimer = setTimeout(() => this.flushReordered(), this.chaos.reorder_window_ms);
      }
      return;
    }
    for (const job of jobs) this.later(this.chaos.delay_ms, () => this.attempt(job));
  }

  /**
   * Sends what the window collected in a shuffled order, one after another so that the receiver sees
   * exactly that order. A shuffle that happens to restore creation order is reversed instead, so a
   * reorder window always reorders.
   */
  private flushReordered(): void {
    this.reorderTimer = undefined;
    const jobs = this.reorderBuffer;
    this.reorderBuffer = [];
    const shuffled = [...jobs];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j] as Job, shuffled[i] as Job];
    }
    if (shuffled.length > 1 && shuffled.every((job, i) => job === jobs[i])) shuffled.reverse();
    this.later(this.chaos.delay_ms, async () => {
      for (const job of shuffled) await this.attempt(job);
    });
  }

  private later(ms: number, fn: () => Promise<void>): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      const run = fn().catch((err: unknown) =>
        this.deps.log('webhook delivery crashed', { err: String(err) }),
      );
      this.running.add(run);
      void run.finally(() => this.running.delete(run));
    }, ms);
    this.timers.add(timer);
  }

  private async attempt(job: Job): Promise<void> {
    const record = this.endpoints.get(job.endpointId);
    // A deleted or disabled endpoint gets nothing more, retries included, as with Stripe.
    if (this.closed || !record || record.endpoint.status !== 'enabled') return;
    job.attempts += 1;
    const started = Date.now();
    let responseStatus: number | null = null;
    let error: string | null = null;
    if (job.attempts <= this.chaos.fail_first_attempts) {
      error = `simulated failure (fail_first_attempts=${this.chaos.fail_first_attempts})`;
    } else {
      const body = JSON.stringify(job.event, null, 2);
      const timestamp = Math.floor(Date.now() / 1000);
      try {
        responseStatus = await this.post(
          record.endpoint.url,
          body,
          signatureHeader(record.secret, timestamp, body),
        );
        if (responseStatus < 200 || responseStatus >= 300) error = `HTTP ${responseStatus}`;
      } catch (err) {
        error = err instanceof Error ? err.message : String(err);
      }
    }
    if (this.closed) return;
    const ok = error === null;
    this.record({
      id: newId('whatt'),
      object: 'webhook_delivery_attempt',
      event_id: job.event.id,
      event_type: job.event.type,
      endpoint_id: job.endpointId,
      url: record.endpoint.url,
      attempt: job.attempts,
      duplicate: job.duplicate,
      status: ok ? 'succeeded' : 'failed',
      response_status: responseStatus,
      error,
      created: Math.floor(Date.now() / 1000),
      duration_ms: Date.now() - started,
    });
    if (ok) {
      if (job.counts) job.event.pending_webhooks = Math.max(0, job.event.pending_webhooks - 1);
      return;
    }
    if (job.attempts >= this.delivery.maxAttempts) {
      this.deps.log('webhook delivery gave up', {
        event: job.event.id,
        endpoint: job.endpointId,
        attempts: job.attempts,
      });
      return;
    }
    const delay = Math.min(this.delivery.retryBaseMs * 2 ** (job.attempts - 1), this.delivery.maxDelayMs);
    this.later(delay, () => this.attempt(job));
  }

  private record(attempt: DeliveryAttempt): void {
    this.attempts.push(attempt);
    if (this.attempts.length > MAX_LOGGED_ATTEMPTS) this.attempts.shift();
    this.deps.log('webhook delivery attempt', attempt);
  }

  /** POSTs one signed body; resolves with the status, rejects on network failure or timeout. */
  private post(url: string, body: string, signature: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const target = new URL(url);
      const client = target.protocol === 'https:' ? https : http;
      const req = client.request(target, {
        method: 'POST',
        // No keep-alive: every attempt is independent, and close() leaves no idle sockets behind.
        agent: false,
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'Content-Length': Buffer.byteLength(body),
          'Stripe-Signature': signature,
          'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'Cache-Control': 'no-cache',
          Accept: '*/*; q=0.5, application/xml',
        },
      });
      this.inflight.add(req);
      const timer = setTimeout(
        () => req.destroy(new Error(`timed out after ${this.delivery.timeoutMs} ms`)),
        this.delivery.timeoutMs,
      );
      const done = () => {
        clearTimeout(timer);
        this.inflight.delete(req);
      };
      req.on('response', (res) => {
        let seen = 0;
        res.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen > MAX_RESPONSE_BYTES) res.destroy();
        });
        res.on('close', () => {
          done();
          resolve(res.statusCode ?? 0);
        });
      });
      req.on('error', (err) => {
        done();
        reject(err);
      });
      req.end(body);
    });
  }

  /** Stops every pending delivery and retry; attempts under way are cut off and not logged. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    if (this.reorderTimer) clearTimeout(this.reorderTimer);
    for (const req of this.inflight) req.destroy(new Error('emulator closed'));
    await Promise.allSettled([...this.running]);
  }
}

/** `t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, keyed with the whole `whsec_…` string, as Stripe signs. */
export function signatureHeader(secret: string, timestamp: number, body: string): string {
  const v1 = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${v1}`;
}

function checkUrl(url: string): void {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (!parsed || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    throw invalidParam('Invalid URL: must be an http or https URL.', 'url', 'url_invalid');
  }
}

function bounded(params: Params, name: string, min: number, max: number): number | undefined {
  const n = asInt(params[name], name, min);
  if (n !== undefined && n > max) throw invalidParam(`${name} must be at most ${max}.`, name);
  return n;
}
