import type Stripe from 'stripe';
import { formatAmount } from './currency.js';

/** The buyer's choices on the hosted page, posted as `action`. */
export const PAGE_ACTIONS = ['card', 'delayed', 'declined'] as const;
export type PageAction = (typeof PAGE_ACTIONS)[number];

export interface PageModel {
  session: Stripe.Checkout.Session;
  lineItems: Stripe.LineItem[];
  /** Shown above the form, e.g. after a declined card. */
  error?: string;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style>
  body { font-family: system-ui, sans-serif; background: #f6f9fc; color: #1a1f36; margin: 0; }
  main { max-width: 480px; margin: 40px auto; background: #fff; border-radius: 8px; padding: 24px 32px;
         box-shadow: 0 2px 8px rgba(0,0,0,.08); }
  .badge { display: inline-block; font-size: 12px; background: #ffde92; color: #5c3b00; border-radius: 4px;
           padding: 2px 6px; }
  table { width: 100%; border-collapse: collapse; margin: 16px 0; }
  td { padding: 6px 0; border-bottom: 1px solid #e3e8ee; }
  td.amount { text-align: right; white-space: nowrap; }
  tr.total td { font-weight: 600; border-bottom: none; }
  label { display: block; font-size: 14px; margin: 12px 0 4px; }
  input { width: 100%; box-sizing: border-box; padding: 8px; font-size: 16px; border: 1px solid #cfd7df;
          border-radius: 4px; }
  button { width: 100%; margin-top: 12px; padding: 10px; font-size: 16px; border: 0; border-radius: 4px;
           cursor: pointer; background: #635bff; color: #fff; }
  button.secondary { background: #e3e8ee; color: #1a1f36; }
  .error { background: #fde2e1; color: #8c1d18; padding: 8px 12px; border-radius: 4px; }
</style>
</head>
<body><main>${body}</main></body>
</html>`;
}

/** The payment page at a session's `url`: what is bought, the total, and the four ways out. */
export function renderCheckoutPage(model: PageModel): string {
  const { session, lineItems } = model;
  if (session.status !== 'open') return renderClosedPage(session);
  const currency = session.currency ?? 'usd';
  const rows = lineItems
    .map(
      (item) =>
        `<tr><td>${escapeHtml(item.description ?? '')} × ${item.quantity ?? 1}</td>` +
        `<td class="amount">${escapeHtml(formatAmount(item.amount_total, item.currency))}</td></tr>`,
    )
    .join('');
  const total = formatAmount(session.amount_total ?? 0, currency);
  const base = `/checkout/${encodeURIComponent(session.id)}`;
  const email = session.customer_email ?? '';
  return layout(
    `Pay ${total}`,
    `<span class="badge">TEST MODE · Stripe emulator</span>
<h1>Pay <span data-testid="total">${escapeHtml(total)}</span></h1>
${model.error ? `<p class="error" role="alert">${escapeHtml(model.error)}</p>` : ''}
<table>${rows}<tr class="total"><td>Total due</td><td class="amount">${escapeHtml(total)}</td></tr></table>
<form method="post" action="${base}/pay">
  <label for="email">Email</label>
  <input id="email" name="email" type="email" value="${escapeHtml(email)}"${email ? ' readonly' : ''}>
  <label for="card_number">Card number</label>
  <input id="card_number" name="card_number" inputmode="numeric" value="4242 4242 4242 4242">
  <button type="submit" name="action" value="card">Pay by card</button>
  <button type="submit" name="action" value="delayed" class="secondary">Pay by bank debit (delayed)</button>
  <button type="submit" name="action" value="declined" class="secondary">Pay with a declined card</button>
</form>
<form method="post" action="${base}/cancel">
  <button type="submit" class="secondary">Cancel and go back</button>
</form>`,
  );
}

function renderClosedPage(session: Stripe.Checkout.Session): string {
  const message =
    session.status === 'expired'
      ? 'This checkout session has expired.'
      : session.payment_status === 'paid'
        ? 'This checkout session is paid. Thank you!'
        : 'Your payment is processing. You will be notified when it completes.';
  return layout(
    'Checkout',
    `<span class="badge">TEST MODE · Stripe emulator</span><h1>${escapeHtml(message)}</h1>`,
  );
}

/** Where Checkout sends the buyer after paying, with `{CHECKOUT_SESSION_ID}` filled in. */
export function successRedirect(session: Stripe.Checkout.Session): string | null {
  return session.success_url ? session.success_url.replaceAll('{CHECKOUT_SESSION_ID}', session.id) : null;
}

export function renderNotFoundPage(): string {
  return layout(
    'Not found',
    '<h1>Something went wrong</h1><p>The page you were looking for could not be found.</p>',
  );
}
