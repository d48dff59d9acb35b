import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * Test support: a local HTTP receiver for the emulator's webhooks. It keeps every request exactly as it
 * arrived (raw body and headers), so tests verify signatures with the SDK's own `constructEvent` rather
 * than trusting a parsed copy.
 */

export interface ReceivedWebhook {
  path: string;
  rawBody: string;
  signature: string;
  contentType: string;
  /** Parsed `id` and `type` of the event, for quick filtering; verify `rawBody` before trusting them. */
  eventId: string;
  eventType: string;
  receivedAt: number;
}

/** How the receiver answers the n-th request (1-based): an HTTP status, or `'hang'` to never answer. */
export type Responder = (n: number, delivery: ReceivedWebhook) => number | 'hang';

export interface WebhookReceiver {
  url: string;
  /** Every request that reached the receiver, in arrival order (including ones answered with an error). */
  received: ReceivedWebhook[];
  respondWith(responder: Responder): void;
  /** Resolves once `predicate` holds over `received`, or rejects after `timeoutMs`. */
  waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  let responder: Responder = () => 200;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let parsed: { id?: unknown; type?: unknown } = {};
      try {
        parsed = JSON.parse(rawBody) as typeof parsed;
      } catch {
        // An unparsable body is still recorded; the test's signature check will report it.
      }
      const delivery: ReceivedWebhook = {
        path: req.url ?? '/',
        rawBody,
        signature: String(req.headers['stripe-signature'] ?? ''),
        contentType: String(req.headers['content-type'] ?? ''),
        eventId: typeof parsed.id === 'string' ? parsed.id : '',
        eventType: typeof parsed.type === 'string' ? parsed.type : '',
        receivedAt: Date.now(),
      };
      received.push(delivery);
      const answer = responder(received.length, delivery);
      if (answer === 'hang') return;
      res.writeHead(answer, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ received: answer < 300 }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/stripe`,
    received,
    respondWith(next) {
      responder = next;
    },
    async waitFor(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) {
          throw new Error(
            `webhook receiver: condition not met after ${timeoutMs} ms (${received.length} received)`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
