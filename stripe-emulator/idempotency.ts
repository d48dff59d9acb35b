import { createHash } from 'node:crypto';

/** A response as it went out the first time, replayed byte for byte. */
export interface StoredResponse {
  status: number;
  body: string;
  requestId: string;
}

interface Entry {
  fingerprint: string;
  response: StoredResponse;
  expiresAt: number;
}

export type IdempotencyLookup =
  | { kind: 'new' }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' };

// Stripe keeps idempotency keys for at least 24 hours; after that a key may be reused freely.
const TTL_MS = 24 * 60 * 60 * 1000;

/** Keys are scoped to the API key that sent them, as Stripe scopes them to the account. */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number) {}

  lookup(apiKey: string, key: string, fingerprint: string): IdempotencyLookup {
    const entry = this.entries.get(`${apiKey}\u0000${key}`);
    if (!entry || entry.expiresAt <= this.now()) return { kind: 'new' };
    if (entry.fingerprint !== fingerprint) return { kind: 'mismatch' };
    return { kind: 'replay', response: entry.response };
  }

  save(apiKey: string, key: string, fingerprint: string, response: StoredResponse): void {
    this.entries.set(`${apiKey}\u0000${key}`, { fingerprint, response, expiresAt: this.now() + TTL_MS });
  }

  prune(): void {
    const now = this.now();
    for (const [k, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(k);
  }
}

/**
 * What makes two requests "the same": method, path and parameters. Key order is normalised so that a
 * client serialising the same parameters in another order still replays.
 */
export function requestFingerprint(method: string, path: string, params: unknown): string {
  return createHash('sha256')
    .update(`${method} ${path}\n${canonical(params)}`)
    .digest('hex');
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const keys = Object.keys(value).sort();
    const record = value as Record<string, unknown>;
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(record[k])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
