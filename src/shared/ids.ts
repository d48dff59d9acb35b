import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * Random base62 text. 62^24 ≈ 2^143, so ids never collide in practice; rejection sampling keeps every
 * character uniform (256 is not a multiple of 62).
 */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

/** Prefixed ids (`aff_…`, `com_…`, `msg_…`) say what they name wherever they turn up. */
export const newId = (prefix: string) => `${prefix}_${randomBase62(24)}`;
