import { invalidParam, missingParam } from './errors.js';

/** A request's parameters as `qs` parses Stripe's form encoding: nested objects and arrays of strings. */
export type Params = Record<string, unknown>;

// Stripe's documented metadata limits; a service that passes the emulator must also pass Stripe.
const METADATA_MAX_KEYS = 50;
const METADATA_MAX_KEY_LENGTH = 40;
const METADATA_MAX_VALUE_LENGTH = 500;

/** The SDK encodes `null` as an empty string, which Stripe reads as "not given" on creation. */
function given(value: unknown): boolean {
  return value !== undefined && value !== '';
}

export function required<T>(value: T | undefined, param: string): T {
  if (value === undefined) throw missingParam(param);
  return value;
}

export function asString(value: unknown, param: string, maxLength = 5000): string | undefined {
  if (!given(value)) return undefined;
  if (typeof value !== 'string') throw invalidParam(`Invalid string: ${param} must be a string.`, param);
  if (value.length > maxLength) {
    throw invalidParam(
      `Invalid string: ${param} must be at most ${maxLength} characters long.`,
      param,
      'string_length_exceeds_maximum',
    );
  }
  return value;
}

export function asInt(value: unknown, param: string, min?: number): number | undefined {
  if (!given(value)) return undefined;
  const text = typeof value === 'string' ? value : '';
  if (!/^-?\d{1,15}$/.test(text)) {
    throw invalidParam(`Invalid integer: ${String(value)}`, param, 'parameter_invalid_integer');
  }
  const n = Number(text);
  if (min !== undefined && n < min) {
    throw invalidParam(
      `This value must be greater than or equal to ${min}.`,
      param,
      'parameter_invalid_integer',
    );
  }
  return n;
}

export function asNumber(value: unknown, param: string, min: number, max: number): number | undefined {
  if (!given(value)) return undefined;
  const n = typeof value === 'string' ? Number(value) : Number.NaN;
  if (!Number.isFinite(n) || n < min || n > max) {
    throw invalidParam(`Invalid number: ${param} must be between ${min} and ${max}.`, param);
  }
  return n;
}

export function asBool(value: unknown, param: string): boolean | undefined {
  if (!given(value)) return undefined;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw invalidParam(`Invalid boolean: ${String(value)}`, param);
}

export function asEnum<const T extends string>(
  value: unknown,
  param: string,
  allowed: readonly T[],
): T | undefined {
  const text = asString(value, param);
  if (text === undefined) return undefined;
  const match = allowed.find((a) => a === text);
  if (match === undefined) {
    throw invalidParam(
      `Invalid ${param}: must be one of ${allowed.join(', ')}`,
      param,
      'parameter_invalid_string',
    );
  }
  return match;
}

export function asObject(value: unknown, param: string): Params | undefined {
  if (!given(value)) return undefined;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidParam(`Invalid object: ${param} must be a hash.`, param);
  }
  return value as Params;
}

/** `qs` turns very long indexed arrays into objects keyed by index; both mean the same list. */
export function asArray(value: unknown, param: string): unknown[] | undefined {
  if (!given(value)) return undefined;
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.every(([k]) => /^\d+$/.test(k))) {
      return entries.sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v);
    }
  }
  throw invalidParam(`Invalid array: ${param} must be an array.`, param);
}

export function asStringArray(value: unknown, param: string): string[] | undefined {
  return asArray(value, param)?.map((v, i) => required(asString(v, `${param}[${i}]`), `${param}[${i}]`));
}

export function asMetadata(value: unknown, param: string): Record<string, string> | undefined {
  const raw = asObject(value, param);
  if (raw === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(raw)) {
    const name = `${param}[${key}]`;
    if (key.length > METADATA_MAX_KEY_LENGTH) {
      throw invalidParam(`Metadata keys can have up to ${METADATA_MAX_KEY_LENGTH} characters.`, name);
    }
    const text = asString(v, name, METADATA_MAX_VALUE_LENGTH);
    if (text !== undefined) out[key] = text;
  }
  if (Object.keys(out).length > METADATA_MAX_KEYS) {
    throw invalidParam(`Metadata can have up to ${METADATA_MAX_KEYS} keys.`, param);
  }
  return out;
}

/** Stripe refuses parameters it does not know, which catches typos a silent emulator would hide. */
export function rejectUnknown(params: Params, allowed: readonly string[], prefix?: string): void {
  for (const key of Object.keys(params)) {
    if (key === 'expand' || allowed.includes(key)) continue;
    const name = prefix ? `${prefix}[${key}]` : key;
    throw invalidParam(`Received unknown parameter: ${name}`, name, 'parameter_unknown');
  }
}
