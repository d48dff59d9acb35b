import { type Html, html, jsonData, money, when } from '../../shared/html.js';
import type { CommissionView } from '../referrals/index.js';
import {
  allCommissions,
  earningsSeries,
  type LedgerLine,
  ledgerLines,
  type StatusLine,
  statusBreakdown,
} from './dashboard.data.js';
import type { DashboardServices } from './dashboard.services.js';

/** The affiliate's own view: earnings over time, statuses and holds, the ledger, the funnel, its links. */

export async function affiliateView(
  services: DashboardServices,
  affiliateId: string,
  publicUrl: string,
): Promise<Html> {
  const affiliate = await services.referrals.getAffiliate(affiliateId);
  const { data: commissions, cut } = await allCommissions(services, affiliateId);
  const lines = ledgerLines(commissions);
  const clicks = await services.referrals.clickCount(affiliateId);
  return html`
<h1>${affiliate.name}</h1>
<p class="muted">Affiliate <code>${affiliate.id}</code>${cut ? ' · showing the latest 1000 commissions' : ''}</p>
${earningsChart(lines)}
${funnel(clicks, commissions.length)}
${linksSection(
  affiliate.codes.filter((c) => c.active).map((c) => c.code),
  publicUrl,
)}
${statusSection(statusBreakdown(commissions))}
${commissionsSection(commissions)}
${ledgerSection(lines)}`;
}

export function earningsChart(lines: readonly LedgerLine[]): Html {
  const series = earningsSeries(lines);
  return html`<section aria-labelledby="earnings-h">
<h2 id="earnings-h">Net earnings over time</h2>
${jsonData('earnings-data', series)}
<div id="earnings-chart" class="chart" data-testid="earnings-chart" data-points="${series.reduce((n, s) => n + s.days.length, 0)}" role="img" aria-label="Cumulative net earnings per day"></div>
<table class="compact"><caption>Cumulative net by day</caption><thead><tr><th scope="col">Day</th><th scope="col">Currency</th><th scope="col" class="num">Net so far</th></tr></thead><tbody>
${series.flatMap((s) => s.days.map((d, i) => html`<tr><td>${d}</td><td>${s.currency.toUpperCase()}</td><td class="num">${money(s.net[i]!, s.currency)}</td></tr>`))}
</tbody></table>
</section>`;
}

function funnel(clicks: number, conversions: number): Html {
  const rate = clicks > 0 ? `${((conversions / clicks) * 100).toFixed(1)} %` : '–';
  return html`<section aria-labelledby="funnel-h"><h2 id="funnel-h">Clicks → conversions</h2>
<dl class="funnel" data-testid="funnel"><div><dt>Clicks</dt><dd data-clicks="${clicks}">${clicks}</dd></div>
<div><dt>Conversions</dt><dd data-conversions="${conversions}">${conversions}</dd></div>
<div><dt>Rate</dt><dd>${rate}</dd></div></dl></section>`;
}

function linksSection(codes: string[], publicUrl: string): Html {
  return html`<section aria-labelledby="links-h"><h2 id="links-h">Your referral links</h2>
<ul class="links">${codes.map((code) => {
    const link = `${publicUrl}/r/${code}`;
    return html`<li><input type="text" readonly value="${link}" aria-label="Referral link for ${code}" id="link-${code}">
<button type="button" class="copy" data-copy="link-${code}">Copy</button></li>`;
  })}</ul>
<p><a href="/dashboard/export.csv" download>Download the ledger as CSV</a></p></section>`;
}

function statusSection(lines: StatusLine[]): Html {
  return html`<section aria-labelledby="status-h"><h2 id="status-h">By status</h2>
<table data-testid="status-breakdown"><thead><tr><th scope="col">Status</th><th scope="col" class="num">Commissions</th><th scope="col" class="num">Net</th></tr></thead><tbody>
${lines.map((l) => html`<tr data-status="${l.status}"><td><span class="badge ${l.status}">${l.status}</span></td><td class="num">${l.count}</td><td class="num">${money(l.net, l.currency)}</td></tr>`)}
</tbody></table></section>`;
}

export const flagList = (c: CommissionView): Html =>
  c.flags.length === 0
    ? html`<span class="muted">none</span>`
    : html`<ul class="flags">${c.flags.map((f) => html`<li><strong>${f.rule}</strong> (${f.mode})</li>`)}</ul>`;

function commissionsSection(commissions: readonly CommissionView[]): Html {
  return html`<section aria-labelledby="commissions-h"><h2 id="commissions-h">Commissions</h2>
<div class="scroll"><table data-testid="commissions"><thead><tr><th scope="col">Commission</th><th scope="col">Order</th><th scope="col">Status</th><th scope="col">Held until</th><th scope="col">Hold reasons</th><th scope="col" class="num">Net</th></tr></thead><tbody>
${commissions.map(
  (c) => html`<tr data-commission="${c.id}"><td><code>${c.id}</code></td><td><code>${c.order_id}</code></td>
<td><span class="badge ${c.status}">${c.status}</span></td><td>${when(c.hold_until)}</td><td>${flagList(c)}</td>
<td class="num">${money(c.net_amount, c.currency)}</td></tr>`,
)}
</tbody></table></div></section>`;
}

export function ledgerSection(lines: readonly LedgerLine[]): Html {
  return html`<section aria-labelledby="ledger-h"><h2 id="ledger-h">Ledger</h2>
<div class="scroll"><table data-testid="ledger"><thead><tr><th scope="col">When</th><th scope="col">Commission</th><th scope="col">Entry</th><th scope="col" class="num">Amount</th><th scope="col">Cause</th></tr></thead><tbody>
${lines.map(
  (
    l,
  ) => html`<tr data-entry="${l.type}"><td>${when(l.at)}</td><td><code>${l.commission_id}</code></td><td>${l.type}</td>
<td class="num">${money(l.amount, l.currency)}</td><td><code>${l.cause}</code></td></tr>`,
)}
</tbody></table></div></section>`;
}
