/**
 * Keeping secrets out of text that is stored or logged: error columns (`last_error`) and log lines. A message
 * from a library or a remote server may quote what it was given (fetch quotes a URL it refuses, a receiver
 * may echo the path it did not expect), so the text is scrubbed, not trusted.
 */

/** What stands in for a removed secret, in rows and log lines alike. */
export const REDACTED = '[redacted]';

// The userinfo of any URL in free text: `scheme://user:password@` or `scheme://token@`. A literal `@`, `/`,
// `?` or `#` inside a password must be percent-encoded in a URL, so the userinfo ends at the first of them.
const URL_USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

// Shorter pieces of a secret URL are not hidden on their own: a query value such as `v=1` is no secret, and
// hiding every "1" would garble status codes and ports in the rest of the message.
const MIN_FRAGMENT_CHARS = 6;

/** Replaces the credentials of every URL in `text` (`postgres://app:pw@db` → `postgres://[redacted]@db`). */
export function redactUrlCredentials(text: string): string {
  return text.replace(URL_USERINFO, `$1${REDACTED}@`);
}

/**
 * The forms in which `secret` may show up in a message: itself; a `whsec_` secret's key without the prefix;
 * for a URL, its normalised form, its path and query together and apart, and each query value (a token in
 * `?token=…` is the usual secret of a webhook URL). The host alone is not hidden: which server failed is what
 * an operator needs to read in the error, and it is no secret.
 */
function fragmentsOf(secret: string): string[] {
  const pieces = [secret];
  if (secret.startsWith('whsec_')) pieces.push(secret.slice('whsec_'.length));
  if (URL.canParse(secret)) {
    const url = new URL(secret);
    pieces.push(url.href, `${url.pathname}${url.search}`, url.pathname, url.search);
    pieces.push(...url.searchParams.values());
    if (url.password) pieces.push(url.password, decodeURIComponent(url.password));
  }
  return pieces.filter((p) => p.length >= MIN_FRAGMENT_CHARS);
}

/**
 * A function that hides each of `secrets` (URLs and keys from the configuration), the pieces of them a
 * message may quote, and the credentials of any URL, in a text about to be stored or logged.
 */
export function secretScrubber(secrets: readonly string[]): (text: string) => string {
  // Longest first: a whole URL becomes one placeholder, instead of its scheme and host followed by the
  // placeholder of its path.
  const fragments = [...new Set(secrets.flatMap(fragmentsOf))].sort((a, b) => b.length - a.length);
  return (text) => redactUrlCredentials(fragments.reduce((t, f) => t.split(f).join(REDACTED), text));
}
