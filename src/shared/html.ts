import type { FastifyInstance } from 'fastify';
import { formatAmount } from './money.js';

/**
 * Server-rendered HTML for the dashboard and the storefront demo: a tagged template that escapes every value
 * it is given unless the value is already markup (`Html`), so nothing a user typed is ever interpreted.
 */

export class Html {
  constructor(readonly text: string) {}
  toString() {
    return this.text;
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
export const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => ESCAPES[c]!);

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (Array.isArray(v)) return v.map(render).join('');
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += render(v) + strings[i + 1]!;
  });
  return new Html(out);
}

/** Money as a person reads it, in the currency's own minor unit (never a bare `/ 100`). */
export const money = (amount: number, currency: string) => formatAmount(amount, currency);

export const when = (at: Date | string | null | undefined) =>
  at ? new Date(at).toISOString().replace('T', ' ').slice(0, 16) : '';

/** Values handed to the page's script as JSON: inert, and escaped so it cannot close its own tag. */
export const jsonData = (id: string, data: unknown) =>
  new Html(
    `<script type="application/json" id="${escapeHtml(id)}">${JSON.stringify(data).replace(/</g, '\\u003c')}</script>`,
  );

export interface PageOptions {
  title: string;
  body: Html;
  /** Shown in the header: who is signed in, with the sign-out form. */
  header?: Html;
  scripts?: string[];
}

/** The one page frame: readable on a phone, keyboard-usable (skip link, visible focus), no CDN. */
export const page = (o: PageOptions) =>
  html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${o.title}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/app.css">
${(o.scripts ?? []).map((s) => html`<script src="${s}" defer></script>`)}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><span class="brand">payments-service</span>${o.header ?? ''}</header>
<main id="main" tabindex="-1">
${o.body}
</main>
</body>
</html>`.text;

/**
 * Headers for our HTML pages. The API's `Referrer-Policy: no-referrer` makes a browser send `Origin: null`
 * with a form posted from the page, which would leave the forms' origin check nothing to compare; within our
 * own origin the page may say where it is.
 */
export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store',
} as const;

/** Pages and assets, not API: left out of `/openapi.json` and `/docs`. */
export function hideFromApiDocs(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    route.schema = { ...route.schema, hide: true };
  });
}
