import { randomUUID } from 'node:crypto';
import { type Html, html, money, when } from '../../shared/html.js';
import type { CommissionView } from '../referrals/index.js';
import { flagList } from './dashboard.affiliate.js';
import { allCommissions, leaderboard, payoutsDue, statusBreakdown } from './dashboard.data.js';
import type { DashboardServices } from './dashboard.services.js';

/** The admin's view: totals, leaderboard, affiliates and codes, the review queue, payouts, operations. */

/** A hidden CSRF token, and for money-moving forms a nonce: a second submit of the same form replays. */
export const formFields = (csrf: string, nonce = false) =>
  html`<input type="hidden" name="_csrf" value="${csrf}">${nonce ? html`<input type="hidden" name="nonce" value="${randomUUID()}">` : ''}`;

export async function adminView(services: DashboardServices, csrf: string): Promise<Html> {
  const { data: commissions } = await allCommissions(services, null);
  const affiliates = (await services.referrals.listAffiliates({ limit: 100, startingAfter: null })).data;
  const names = new Map(affiliates.map((a) => [a.id, a.name]));
  const held = commissions.filter((c) => c.status === 'on_hold');
  const due = payoutsDue(commissions.filter((c) => c.status === 'approved'));
  const clicks = await services.referrals.clickCount(null);
  return html`
<h1>Admin</h1>
${totals(commissions, clicks)}
<section aria-labelledby="board-h"><h2 id="board-h">Leaderboard</h2>
<table data-testid="leaderboard"><thead><tr><th scope="col">Affiliate</th><th scope="col" class="num">Conversions</th><th scope="col" class="num">Net commission</th></tr></thead><tbody>
${leaderboard(commissions).map((l) => html`<tr><td>${names.get(l.affiliate_id) ?? l.affiliate_id}</td><td class="num">${l.conversions}</td><td class="num">${money(l.net, l.currency)}</td></tr>`)}
</tbody></table></section>
${reviewQueue(held, names, csrf)}
${payoutsSection(due, names, csrf)}
${await affiliatesSection(services, affiliates, csrf)}
${orderLookup()}
${await operations(services, csrf)}`;
}

function totals(commissions: readonly CommissionView[], clicks: number): Html {
  return html`<section aria-labelledby="totals-h"><h2 id="totals-h">Totals</h2>
<p>${clicks} clicks, ${commissions.length} referred orders.</p>
<table data-testid="totals"><thead><tr><th scope="col">Status</th><th scope="col" class="num">Commissions</th><th scope="col" class="num">Net</th></tr></thead><tbody>
${statusBreakdown(commissions).map((l) => html`<tr data-status="${l.status}"><td><span class="badge ${l.status}">${l.status}</span></td><td class="num">${l.count}</td><td class="num">${money(l.net, l.currency)}</td></tr>`)}
</tbody></table></section>`;
}

function reviewQueue(held: readonly CommissionView[], names: Map<string, string>, csrf: string): Html {
  return html`<section aria-labelledby="review-h"><h2 id="review-h">Fraud review (${held.length} on hold)</h2>
${held.length === 0 ? html`<p class="muted">Nothing waits for review.</p>` : ''}
<ul class="cards" data-testid="review-queue">${held.map(
    (
      c,
    ) => html`<li data-commission="${c.id}"><p><code>${c.id}</code> · ${names.get(c.affiliate_id) ?? c.affiliate_id} · order <code>${c.order_id}</code> · ${money(c.net_amount, c.currency)}</p>
${flagList(c)}
<form method="post" action="/dashboard/commissions/${c.id}/review" class="inline">${formFields(csrf)}
<label>Reason <input name="reason" required maxlength="500" value="reviewed in the dashboard"></label>
<button name="verdict" value="approve">Approve</button> <button name="verdict" value="reject" class="danger">Reject</button></form></li>`,
  )}</ul></section>`;
}

function payoutsSection(due: ReturnType<typeof payoutsDue>, names: Map<string, string>, csrf: string): Html {
  return html`<section aria-labelledby="payouts-h"><h2 id="payouts-h">Payouts due</h2>
${due.length === 0 ? html`<p class="muted">Nothing is approved and unpaid.</p>` : ''}
<table data-testid="payouts-due"><thead><tr><th scope="col">Affiliate</th><th scope="col" class="num">Commissions</th><th scope="col" class="num">Approved net</th><th scope="col">Action</th></tr></thead><tbody>
${due.map(
  (
    o,
  ) => html`<tr data-affiliate="${o.affiliate_id}"><td>${names.get(o.affiliate_id) ?? o.affiliate_id}</td><td class="num">${o.commissions}</td><td class="num">${money(o.amount, o.currency)}</td>
<td><form method="post" action="/dashboard/payouts">${formFields(csrf, true)}<input type="hidden" name="affiliate_id" value="${o.affiliate_id}"><input type="hidden" name="currency" value="${o.currency}"><button>Pay ${money(o.amount, o.currency)}</button></form></td></tr>`,
)}
</tbody></table></section>`;
}

async function affiliatesSection(
  services: DashboardServices,
  affiliates: ReadonlyArray<{ id: string; name: string; email: string }>,
  csrf: string,
): Promise<Html> {
  const withCodes = await Promise.all(affiliates.map((a) => services.referrals.getAffiliate(a.id)));
  return html`<section aria-labelledby="affiliates-h"><h2 id="affiliates-h">Affiliates and codes</h2>
<div class="scroll"><table data-testid="affiliates"><thead><tr><th scope="col">Affiliate</th><th scope="col">Email</th><th scope="col">Codes</th><th scope="col">Add a code</th></tr></thead><tbody>
${withCodes.map(
  (
    a,
  ) => html`<tr data-affiliate="${a.id}"><td>${a.name}<br><code>${a.id}</code></td><td>${a.email}</td><td>${a.codes.map((c) => html`<code>${c.code}</code>${c.active ? '' : ' (off)'} `)}</td>
<td><form method="post" action="/dashboard/affiliates/${a.id}/codes" class="inline">${formFields(csrf)}<label>Code <input name="code" required pattern="[A-Za-z0-9_\\-]{3,32}" size="10"></label> <button>Add</button></form></td></tr>`,
)}
</tbody></table></div>
<form method="post" action="/dashboard/affiliates" class="stack" aria-labelledby="new-aff-h"><h3 id="new-aff-h">New affiliate</h3>${formFields(csrf)}
<label>Name <input name="name" required maxlength="200"></label>
<label>Email <input name="email" type="email" required maxlength="512"></label>
<label>Commission (basis points, 1000 = 10 %) <input name="basis_points" type="number" min="1" max="10000" value="1000" required></label>
<button>Create affiliate</button></form></section>`;
}

const orderLookup = () => html`<section aria-labelledby="order-h"><h2 id="order-h">Order lookup</h2>
<form method="get" action="/dashboard/orders" class="inline"><label>Order id <input name="id" required pattern="[A-Za-z0-9_\\-]{1,64}"></label> <button>Look up</button></form></section>`;

async function operations(services: DashboardServices, csrf: string): Promise<Html> {
  const [pending, deferred, failed, backlog, audit] = await Promise.all([
    services.listEvents({ status: 'pending', limit: 20 }),
    services.listEvents({ status: 'deferred', limit: 20 }),
    services.listEvents({ status: 'failed', limit: 20 }),
    services.outboxBacklog(),
    services.verifyAudit(),
  ]);
  const count = (l: { data: unknown[]; has_more: boolean }) => `${l.data.length}${l.has_more ? '+' : ''}`;
  return html`<section aria-labelledby="ops-h"><h2 id="ops-h">Operations</h2>
<dl class="funnel" data-testid="inbox-health"><div><dt>Webhook backlog</dt><dd data-pending="${pending.data.length}">${count(pending)}</dd></div>
<div><dt>Deferred</dt><dd>${count(deferred)}</dd></div><div><dt>Failed</dt><dd data-failed="${failed.data.length}">${count(failed)}</dd></div>
<div><dt>Orders notifications waiting</dt><dd data-outbox="${backlog.pending}">${backlog.pending}${backlog.pending ? ` (oldest ${backlog.oldest_seconds} s)` : ''}</dd></div>
<div><dt>Audit chains</dt><dd data-testid="audit-status" data-ok="${audit.ok}">${audit.ok ? `intact: ${audit.entries} entries in ${audit.streams} streams` : `broken at ${audit.first_bad.stream} #${audit.first_bad.seq}`}</dd></div></dl>
${
  failed.data.length
    ? html`<h3>Failed events</h3><ul class="cards">${failed.data.map(
        (e) => html`<li><code>${e.id}</code> ${e.type} · ${e.attempts} tries · ${e.reason ?? ''}
<form method="post" action="/dashboard/events/${e.id}/replay" class="inline">${formFields(csrf)}<button>Replay</button></form></li>`,
      )}</ul>`
    : ''
}
</section>`;
}

export function orderPage(
  detail: {
    order: {
      id: string;
      status: string;
      currency: string;
      amount_total: number;
      amount_paid: number;
      amount_refunded: number;
      customer_email: string | null;
    };
    history: Array<{
      seq: number;
      from: string | null;
      to: string;
      changes: Record<string, unknown>;
      cause: string;
      at: string;
    }>;
  },
  csrf: string,
): Html {
  const o = detail.order;
  return html`<p><a href="/dashboard">← Dashboard</a></p><h1>Order <code>${o.id}</code></h1>
<dl class="funnel"><div><dt>Status</dt><dd data-testid="order-status">${o.status}</dd></div><div><dt>Total</dt><dd>${money(o.amount_total, o.currency)}</dd></div>
<div><dt>Paid</dt><dd>${money(o.amount_paid, o.currency)}</dd></div><div><dt>Refunded</dt><dd data-testid="order-refunded">${money(o.amount_refunded, o.currency)}</dd></div></dl>
<h2>History</h2><div class="scroll"><table data-testid="order-history"><thead><tr><th scope="col">#</th><th scope="col">Change</th><th scope="col">Diff</th><th scope="col">Cause</th><th scope="col">When</th></tr></thead><tbody>
${detail.history.map((h) => html`<tr><td>${h.seq}</td><td>${h.from ?? '–'} → ${h.to}</td><td><code>${JSON.stringify(h.changes)}</code></td><td><code>${h.cause}</code></td><td>${when(h.at)}</td></tr>`)}
</tbody></table></div>
<h2>Refund</h2><form method="post" action="/dashboard/orders/${o.id}/refunds" class="stack">${formFields(csrf, true)}
<label>Amount in minor units (empty: the rest) <input name="amount" type="number" min="1"></label>
<label>Reason <input name="reason" maxlength="500" value="requested_by_customer"></label>
<button class="danger">Refund</button></form>`;
}
