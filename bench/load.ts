/**
 * The load generator, a process of its own (spawned by bench/run.ts with an IPC channel): it takes one job at a
 * time, sends it over keep-alive connections, and answers with what it measured. Webhook events are signed at
 * the moment they are sent; in open loop a request's latency counts from its scheduled send time, so a slow
 * server cannot hide its queue by slowing the sender down.
 */
import { createHmac } from 'node:crypto';
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createStripeClient } from '../src/adapters/stripe.js';
import { events } from '../test/helpers/stripe-events.js';
import { benchIds, percentile } from './common.js';

export type LoopMode = { loop: 'closed'; concurrency: number } | { loop: 'open'; rate: number };

export type LoadJob = { prefix: string; from: number; count: number; mode: LoopMode } & (
  | { kind: 'webhooks'; targets: string[]; secret: string; event: 'completed' | 'refunded' }
  | { kind: 'checkout'; targets: string[]; bearer: string }
  | { kind: 'emulator-create'; base: string }
);

export interface LoadResult {
  sent: number;
  ok: number;
  /** Non-2xx answers by status (`network` for a failed connection). */
  errors: Record<string, number>;
  /** The `status` field of the webhook's 200 answers (processed, duplicate, queued, ignored). */
  answers: Record<string, number>;
  seconds: number;
  ack_per_second: number;
  latency_ms: { p50: number; p99: number; max: number };
  /** Epoch milliseconds of the first send and the last answer. */
  started_at: number;
  ended_at: number;
}

interface Answer {
  status: number;
  body: string;
}

const agent = new Agent({ keepAlive: true, maxSockets: 256 });

function post(url: string, headers: Record<string, string>, body: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end(body);
  });
}

/** The i-th request of a job, as a function that sends it; payloads are built before the clock starts. */
function requestsOf(job: LoadJob): (i: number) => Promise<Answer> {
  if (job.kind === 'webhooks') {
    const payloads = Array.from({ length: job.count }, (_, k) => {
      const fx = benchIds(job.prefix, job.from + k);
      const event = job.event === 'completed' ? events.completed(fx) : events.chargeRefunded(fx, 1000);
      return JSON.stringify({ ...event, id: `evt_${job.prefix}_${job.event}_${job.from + k}` });
    });
    return (i) => {
      const payload = payloads[i]!;
      const t = Math.floor(Date.now() / 1000);
      const v1 = createHmac('sha256', job.secret).update(`${t}.`).update(payload).digest('hex');
      return post(
        `${job.targets[i % job.targets.length]}/webhooks/stripe`,
        {
          'content-type': 'application/json; charset=utf-8',
          'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          'stripe-signature': `t=${t},v1=${v1}`,
        },
        payload,
      );
    };
  }
  const orderId = (i: number) => `ord_${job.prefix}_${job.from + i}`;
  const lineItems = [{ name: 'T-shirt', unit_amount: 2500, quantity: 2 }];
  if (job.kind === 'checkout') {
    return (i) =>
      post(
        `${job.targets[i % job.targets.length]}/v1/checkout/sessions`,
        {
          'content-type': 'application/json',
          authorization: job.bearer,
          'idempotency-key': `bench-${job.prefix}-${job.from + i}`,
        },
        JSON.stringify({
          order_id: orderId(i),
          currency: 'usd',
          customer_email: 'buyer@example.com',
          line_items: lineItems,
        }),
      );
  }
  const stripe = createStripeClient('sk_test_bench', job.base);
  return async (i) => {
    const metadata = { order_id: orderId(i) };
    try {
      await stripe.checkout.sessions.create(
        {
          mode: 'payment',
          client_reference_id: orderId(i),
          customer_email: 'buyer@example.com',
          line_items: lineItems.map((item) => ({
            quantity: item.quantity,
            price_data: { currency: 'usd', unit_amount: item.unit_amount, product_data: { name: item.name } },
          })),
          metadata,
          payment_intent_data: { metadata },
          success_url: 'http://127.0.0.1/checkout/success?session_id={CHECKOUT_SESSION_ID}',
          cancel_url: 'http://127.0.0.1/checkout/cancel',
        },
        { idempotencyKey: `bare-${job.prefix}-${job.from + i}` },
      );
      return { status: 200, body: '' };
    } catch (err) {
      return { status: (err as { statusCode?: number }).statusCode ?? 0, body: '' };
    }
  };
}

/** Sends every request of `send`, closed or open loop, and returns per-request latencies and answers. */
async function drive(count: number, mode: LoopMode, send: (i: number) => Promise<Answer>) {
  const latencies = new Float64Array(count);
  const answers: Answer[] = new Array(count);
  const start = performance.now();
  const one = async (i: number, from: number) => {
    answers[i] = await send(i);
    latencies[i] = performance.now() - from;
  };
  if (mode.loop === 'closed') {
    let next = 0;
    await Promise.all(
      Array.from({ length: mode.concurrency }, async () => {
        while (next < count) {
          const i = next++;
          await one(i, performance.now());
        }
      }),
    );
  } else {
    const interval = 1000 / mode.rate;
    const inFlight: Promise<void>[] = [];
    let next = 0;
    while (next < count) {
      const now = performance.now();
      while (next < count && start + next * interval <= now) {
        inFlight.push(one(next, start + next * interval));
        next++;
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inFlight);
  }
  return { latencies, answers, seconds: (performance.now() - start) / 1000 };
}

export async function runJob(job: LoadJob): Promise<LoadResult> {
  const send = requestsOf(job);
  const startedAt = Date.now();
  const { latencies, answers, seconds } = await drive(job.count, job.mode, send);
  const endedAt = Date.now();
  const errors: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  let ok = 0;
  for (const a of answers) {
    if (a.status >= 200 && a.status < 300) {
      ok++;
      if (job.kind === 'webhooks') {
        const s = (JSON.parse(a.body) as { status?: string }).status ?? 'unknown';
        statuses[s] = (statuses[s] ?? 0) + 1;
      }
    } else {
      const key = a.status === 0 ? 'network' : String(a.status);
      errors[key] = (errors[key] ?? 0) + 1;
    }
  }
  const sorted = latencies.slice().sort();
  return {
    sent: job.count,
    ok,
    errors,
    answers: statuses,
    seconds,
    ack_per_second: ok / seconds,
    latency_ms: {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      max: sorted[sorted.length - 1] ?? 0,
    },
    started_at: startedAt,
    ended_at: endedAt,
  };
}

if (process.send) {
  process.on('message', (job: LoadJob) => {
    runJob(job).then(
      (result) => process.send?.({ result }),
      (err: unknown) => process.send?.({ error: String(err instanceof Error ? err.stack : err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ ready: true });
}
