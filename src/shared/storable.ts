/**
 * PostgreSQL's `text` refuses the NUL character, and its `jsonb` refuses NUL and unpaired UTF-16 surrogates
 * (which JSON can spell as `\u0000` or `\ud800`, and JavaScript strings can hold). Strings from outside are
 * therefore either refused (our own API) or made storable (what Stripe signed), never left to fail a write.
 */

/** A lone surrogate, or NUL: what no PostgreSQL string can hold. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what this looks for.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The JSON escapes of those characters, so that a payload can be checked without parsing it. */
const UNSTORABLE_ESCAPE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

export const isStorable = (text: string) => text.search(UNSTORABLE) === -1;

/** The string with NUL and lone surrogates replaced by U+FFFD, as a UTF-8 decoder treats what it cannot read. */
export const storableString = (text: string) =>
  isStorable(text) ? text : text.replace(UNSTORABLE, '\ufffd');

/** A JSON value with every string and key made storable. */
export function storable<T>(value: T): T {
  if (typeof value === 'string') return storableString(value) as T;
  if (Array.isArray(value)) return value.map(storable) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [storableString(k), storable(v)])) as T;
  }
  return value;
}

/**
 * JSON text as `jsonb` can take it: the same text when it spells no unstorable character (the common case,
 * found without parsing), else the value with those characters replaced. `changed` says whether it was.
 */
export function storableJson(json: string): { json: string; changed: boolean } {
  if (!UNSTORABLE_ESCAPE.test(json)) return { json, changed: false };
  const safe = JSON.stringify(storable(JSON.parse(json)));
  return { json: safe, changed: safe !== json };
}

/** Paths in a parsed request (body, query, params) whose strings or keys PostgreSQL could not store. */
export function unstorablePaths(value: unknown, path: string, found: string[] = []): string[] {
  if (typeof value === 'string') {
    if (!isStorable(value)) found.push(path);
  } else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value)) {
    // Arrays too: their entries are keyed by index.
    for (const [k, v] of Object.entries(value)) {
      const at = `${path}.${isStorable(k) ? k : storableString(k)}`;
      if (!isStorable(k)) found.push(at);
      unstorablePaths(v, at, found);
    }
  }
  return found;
}
