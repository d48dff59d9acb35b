import { formatAmount } from '../../shared/money.js';
import type { OrderRow, OrderStatus } from '../orders/index.js';
import type { SessionSeen } from './checkout.sessions.js';

/**
 * The default success and cancel pages a buyer's browser lands on after Stripe Checkout. They show what the
 * service knows and change nothing: an order becomes paid only through Stripe's webhook (DESIGN §7).
 */

const STATUS_TEXT: Record<OrderStatus, string> = {
  awaiting_payment: 'We have not received your payment yet.',
  processing: 'Your payment is being processed. You will hear from us when it has settled.',
  paid: 'Payment received. Thank you!',
  payment_failed: 'Your payment did not go through. You can return to the shop and try again.',
  expired: 'This checkout expired before it was paid. You can return to the shop and start again.',
  partially_refunded: 'This order was paid; part of it has been refunded.',
  refunded: 'This order was paid and has been refunded.',
};

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

function page(title: string, message: string, order: OrderRow | null): string {
  const facts = order
    ? `<dl>
      <dt>Order</dt><dd>${escapeHtml(order.id)}</dd>
      <dt>Status</dt><dd data-status="${escapeHtml(order.status)}">${escapeHtml(order.status.replaceAll('_', ' '))}</dd>
      <dt>Amount</dt><dd>${escapeHtml(formatAmount(order.amount_total, order.currency))}</dd>
    </dl>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${escapeHtml(title)}</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 32rem; margin: 4rem auto; padding: 0 1rem; color: #1a1a1a; }
    dl { display: grid; grid-template-columns: max-content 1fr; gap: .4rem 1rem; }
    dt { color: #666; }
    dd { margin: 0; }
  </style>
</head>
<body>
  <main>
    <h1>${escapeHtml(title)}</h1>
    <p>${escapeHtml(message)}</p>
    ${facts}
  </main>
</body>
</html>`;
}

export function renderSuccessPage({ order, paymentReceived }: SessionSeen): string {
  if (!order) return page('Checkout not found', 'We do not know this checkout.', null);
  if (order.status === 'awaiting_payment' && paymentReceived) {
    return page(
      'Payment received',
      'Stripe has received your payment; we are confirming it. Refresh this page in a moment.',
      order,
    );
  }
  return page(order.status === 'paid' ? 'Thank you' : 'Your order', STATUS_TEXT[order.status], order);
}

/**
 * The same page for every order, known or not: the page is public and order ids are guessable, so it must
 * not tell who ordered what, or whether an order exists. (The success page is keyed by the session id,
 * which nobody can guess.)
 */
export function renderCancelPage(): string {
  return page('Checkout cancelled', 'Nothing was charged. You can return to the shop and try again.', null);
}
