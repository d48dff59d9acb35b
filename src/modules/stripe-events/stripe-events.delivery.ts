import { claimOne } from '../../jobs/index.js';
import { AppError, isDatabaseUnavailable, serviceUnavailable } from '../../shared/errors.js';
import { type StripeEvent, StripeEventSchema } from './stripe-events.envelope.js';
import {
  applyClaimed,
  applyEvent,
  type ClaimedEvent,
  type InboxContext,
  recordEvent,
} from './stripe-events.inbox.js';
import {
  checkSignatureHeader,
  type SignatureFailure,
  verifyStripeSignature,
} from './stripe-events.signature.js';
import { INBOX_QUEUE } from './stripe-events.sql.js';

/** The delivery statuses of CONTRACT §3's 200 answer. */
export type DeliveryStatus = 'processed' | 'duplicate' | 'ignored' | 'queued';

export interface DeliveryAnswer {
  received: true;
  event_id: string;
  status: DeliveryStatus;
}

/** What a delivery is checked against: the configured secrets (several while rotating) and the tolerance. */
export interface DeliveryContext extends InboxContext {
  webhookSecrets: readonly string[];
  toleranceSeconds: number;
}

const SIGNATURE_MESSAGES: Record<SignatureFailure, string> = {
  missing_header: 'the Stripe-Signature header is missing',
  malformed_header: 'the Stripe-Signature header is not t=<unix seconds>,v1=<signature>',
  no_v1_signature: 'the Stripe-Signature header has no v1 signature',
  empty_body: 'the body is empty',
  no_matching_signature: 'no v1 signature matches the body for any configured webhook secret',
  timestamp_outside_tolerance: 'the signature timestamp is outside the tolerance',
};

const signatureRefused = (reason: SignatureFailure) =>
  new AppError(400, 'signature_verification_failed', SIGNATURE_MESSAGES[reason], { details: { reason } });

/**
 * Refuses a delivery whose `Stripe-Signature` header cannot verify whatever the body holds (missing,
 * malformed, stale), before the body is read: unverified input gets no work.
 */
export function refuseUnverifiableHeader(ctx: DeliveryContext, sigHeader: string): void {
  const check = checkSignatureHeader(sigHeader, ctx.toleranceSeconds, ctx.options.nowSeconds());
  if (!check.ok) throw signatureRefused(check.reason);
}

function parseEvent(payload: Buffer): StripeEvent {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new AppError(400, 'invalid_payload', 'the signed body is not JSON');
  }
  const parsed = StripeEventSchema.safeParse(json);
  if (!parsed.success) {
    const fields = Object.fromEntries(
      parsed.error.issues.map((i) => [i.path.join('.') || 'body', i.message]),
    );
    throw new AppError(400, 'invalid_payload', 'the signed body is not a Stripe event', {
      details: { fields },
    });
  }
  return parsed.data;
}

/** Inline processing after a delivery was recorded: the delivery is already safe, so failures only log. */
async function applyAfterRecording(
  ctx: InboxContext,
  eventId: string,
  type: string,
): Promise<DeliveryStatus> {
  try {
    const outcome = await applyEvent(ctx, eventId, type, true);
    if (outcome.kind === 'duplicate') return 'duplicate';
    if (outcome.kind === 'locked') return 'queued';
    if (outcome.result.status === 'done') return 'processed';
    return outcome.result.status === 'ignored' ? 'ignored' : 'queued';
  } catch (err) {
    ctx.log.warn(
      { err, event_id: eventId, type },
      'inline processing failed; the retry worker will apply the event',
    );
    return 'queued';
  }
}

/**
 * A redelivery of an event recorded earlier but never settled (its first try crashed or is backing off): if it
 * is due, this delivery claims the next try and does it instead of waiting for a worker. A burst of duplicates
 * right after the first delivery finds it still leased to that delivery and leaves it alone.
 */
export async function finishIfDue(ctx: InboxContext, eventId: string): Promise<void> {
  try {
    const claimed = (
      await ctx.db.query<ClaimedEvent>(claimOne(INBOX_QUEUE, eventId, ctx.options.lockTimeoutMs * 2))
    ).rows[0];
    if (claimed) await applyClaimed(ctx, claimed);
  } catch (err) {
    ctx.log.warn(
      { err, event_id: eventId },
      'processing a redelivered event failed; the retry worker will apply it',
    );
  }
}

/**
 * `POST /webhooks/stripe`: verify the signature over the raw bytes, record the event, and only then
 * acknowledge; then apply it inline. Throws AppError 400 (signature, payload) or 503 (database), in which case
 * nothing was stored or acknowledged.
 */
export async function handleWebhookEvent(
  ctx: DeliveryContext,
  payload: Buffer,
  sigHeader: string,
): Promise<DeliveryAnswer> {
  const check = verifyStripeSignature(
    payload,
    sigHeader,
    ctx.webhookSecrets,
    ctx.toleranceSeconds,
    ctx.options.nowSeconds(),
  );
  if (!check.ok) throw signatureRefused(check.reason);
  const event = parseEvent(payload);
  let inserted: boolean;
  try {
    inserted = await recordEvent(ctx, event, payload.toString('utf8'), 'webhook');
  } catch (err) {
    if (isDatabaseUnavailable(err)) throw serviceUnavailable('the database', err);
    throw err;
  }
  if (!inserted) {
    ctx.metrics.duplicate.inc({ type: event.type });
    await finishIfDue(ctx, event.id);
    return { received: true, event_id: event.id, status: 'duplicate' };
  }
  ctx.metrics.received.inc({ type: event.type });
  return { received: true, event_id: event.id, status: await applyAfterRecording(ctx, event.id, event.type) };
}
