/**
 * Ceiling H, a process of its own: a bare node:http server that only verifies each request's Stripe signature
 * (the service's own check: HMAC-SHA256 of `t.payload`, constant-time compare) and answers 200.
 */
import { createServer } from 'node:http';
import { verifyStripeSignature } from '../src/modules/stripe-events/stripe-events.signature.js';

const secret = process.env.STRIPE_WEBHOOK_SECRET ?? '';
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const header = req.headers['stripe-signature'];
    const check = verifyStripeSignature(
      Buffer.concat(chunks),
      typeof header === 'string' ? header : undefined,
      [secret],
      300,
      Math.floor(Date.now() / 1000),
    );
    res.writeHead(check.ok ? 200 : 400, { 'content-type': 'application/json' });
    res.end(check.ok ? '{"received":true,"status":"verified"}' : `{"error":"${check.reason}"}`);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening on ${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
