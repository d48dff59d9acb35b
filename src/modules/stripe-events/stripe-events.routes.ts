import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DeliveryAnswer } from './stripe-events.delivery.js';

/** CONTRACT §3: Stripe's payloads stay far below this; anything larger is not from Stripe. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

const DeliveryAnswerSchema = z.object({
  received: z.literal(true),
  event_id: z.string(),
  status: z.enum(['processed', 'duplicate', 'ignored', 'queued']),
});

/** Sent twice, the header is ambiguous; treated as missing. */
const signatureHeader = (req: FastifyRequest) => {
  const header = req.headers['stripe-signature'];
  return typeof header === 'string' ? header : '';
};

/**
 * `POST /webhooks/stripe`. Registered as its own (encapsulated) plugin so that this route alone receives the
 * body as raw bytes, whatever its content type: the signature covers the exact bytes, and a body parsed and
 * re-serialised would no longer match them.
 */
export const webhookRoutes =
  (
    handleWebhookEvent: (payload: Buffer, sigHeader: string) => Promise<DeliveryAnswer>,
    refuseUnverifiableHeader: (sigHeader: string) => void,
  ) =>
  async (app: FastifyInstance) => {
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_req, body, done) =>
      done(null, body),
    );
    app.withTypeProvider<ZodTypeProvider>().post(
      '/webhooks/stripe',
      {
        bodyLimit: WEBHOOK_BODY_LIMIT,
        // Stripe's deliveries are counted apart, so no other traffic can use up their allowance.
        config: { rateBucket: 'webhook' },
        // A header that cannot verify is refused before the body is read.
        onRequest: async (req) => refuseUnverifiableHeader(signatureHeader(req)),
        schema: {
          tags: ['webhooks'],
          summary: 'Stripe webhook endpoint (signed with Stripe-Signature)',
          security: [],
          response: { 200: DeliveryAnswerSchema },
        },
      },
      async (req) => {
        const payload = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        return handleWebhookEvent(payload, signatureHeader(req));
      },
    );
  };
