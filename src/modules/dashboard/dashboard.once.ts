import type { Queryable } from '../../ports/db.js';
import { AppError } from '../../shared/errors.js';
import { sha256Hex } from '../../shared/hash.js';
import type { Principal } from '../auth/index.js';
import { claimKey, completeKey, releaseKey } from '../idempotency/index.js';

/**
 * A money-moving form (a payout, a refund) runs at most once per page it came from: the page's nonce is the
 * Idempotency-Key, scoped to the signed-in key as the API's are, and the same keys table decides. A double
 * submit replays the first outcome; a submit while the first still runs is refused (409
 * `idempotency_key_in_use`). The run is given the key's row id, which a Stripe call takes as its request.
 */

const NONCE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export async function oncePerForm<T>(
  db: Queryable,
  principal: Principal,
  form: { action: string; nonce: unknown; fields: Record<string, unknown> },
  run: (requestId: string) => Promise<T>,
): Promise<T> {
  if (typeof form.nonce !== 'string' || !NONCE.test(form.nonce))
    throw new AppError(400, 'idempotency_key_missing', 'the form carries no valid nonce; reload the page');
  const fingerprint = sha256Hex(`${form.action}\n${JSON.stringify(form.fields)}`);
  const claim = await claimKey(db, principal.keyId, `dashboard:${form.nonce}`, fingerprint);
  if (claim.kind === 'reused')
    throw new AppError(422, 'idempotency_key_reused', 'this form was already sent with other values');
  if (claim.kind === 'in_use')
    throw new AppError(409, 'idempotency_key_in_use', 'this form is still being processed');
  if (claim.kind === 'replay') {
    const body = JSON.parse(claim.body) as T & { error?: { code: string; message: string } };
    if (claim.status >= 400 && body.error)
      throw new AppError(claim.status, body.error.code, body.error.message);
    return body;
  }
  try {
    const result = await run(claim.key.id);
    await completeKey(db, claim.key, { status: 201, type: 'application/json', body: JSON.stringify(result) });
    return result;
  } catch (err) {
    // A refusal is final for this form (sending it again gets the same answer); anything else may be retried.
    if (err instanceof AppError && err.status < 500) {
      const body = JSON.stringify({ error: { code: err.code, message: err.message } });
      await completeKey(db, claim.key, { status: err.status, type: 'application/json', body });
    } else {
      await releaseKey(db, claim.key);
    }
    throw err;
  }
}
