import mailchecker from 'mailchecker';
import { sha256Hex } from '../../shared/hash.js';
import { formatAmount } from '../../shared/money.js';
import { FRAUD_RULES, type FraudConfig, type FraudMode, type FraudRule } from './referrals.fraud-config.js';

/**
 * The fraud guards of DESIGN §6 as pure functions: the referrals module gathers what is known about a
 * referred order and its affiliate, and stores each decision returned here with its rule and evidence. A
 * decision in `enforce` mode puts the commission on hold for an admin; one in `shadow` mode is only recorded.
 *
 * Evidence is written for an admin reading the dashboard (what matched, the threshold, the counts) and is
 * stored in the append-only audit log, which cannot forget: so it carries the hashes it was given, the last
 * four characters of a card fingerprint, and a hash of a matched email, never an address, an IP or a whole
 * fingerprint.
 */

export type { FraudMode, FraudRule } from './referrals.fraud-config.js';

/** What is known when a referred order is paid (the payment.captured fact plus what the referrals module holds). */
export interface FraudEvidence {
  affiliate: {
    id: string;
    email: string;
    customerIds: readonly string[];
    cardFingerprints: readonly string[];
    ipHashes: readonly string[];
  };
  order: {
    id: string;
    amount: number;
    currency: string;
    buyerEmail: string | null;
    customerId: string | null;
    cardFingerprint: string | null;
    buyerIpHash: string | null;
    riskLevel: string | null;
  };
  /** Conversions of this code in the hour before this one (this one not counted), purchases from this buyer IP in the last 24 h (this one not counted). */
  velocity: { codeConversionsLastHour: number; ipPurchasesLastDay: number };
}

export interface FraudDecision {
  rule: FraudRule;
  mode: FraudMode;
  evidence: Record<string, unknown>;
}

type Evidence = Record<string, unknown>;
/** One rule's test: the evidence that makes it fire, or null when it does not. */
type Check = (e: FraudEvidence, config: FraudConfig) => Evidence | null;

const GMAIL_DOMAINS = new Set(['gmail.com', 'googlemail.com']);

/**
 * The mailbox an address delivers to, as far as the address alone tells: lower case (providers treat the
 * local part case-insensitively in practice, whatever RFC 5321 allows), without a `+tag` (subaddressing, which
 * Gmail, Outlook, iCloud and Fastmail all deliver to the same inbox), and for Gmail without dots and with
 * googlemail.com read as gmail.com, because Gmail ignores both. Other domains keep their dots: at most
 * providers `a.b` and `ab` are different people. Idempotent, so a stored normal form can be normalised again.
 */
export function normalizeEmail(email: string): string {
  const lower = email.trim().toLowerCase();
  // The last `@`: a quoted local part may contain one, a domain never does.
  const at = lower.lastIndexOf('@');
  if (at === -1) return lower;
  const domain = lower.slice(at + 1);
  const local = lower.slice(0, at).split('+')[0] ?? '';
  return GMAIL_DOMAINS.has(domain) ? `${local.replaceAll('.', '')}@gmail.com` : `${local}@${domain}`;
}

/** mailchecker's list, read once: the Set it returns is its own live one, so it is only ever read here. */
const DISPOSABLE_DOMAINS: ReadonlySet<string> = mailchecker.blacklist();

/** The listed disposable domain `domain` is, or is under (`x.mailinator.com` → `mailinator.com`), or null. */
function listedDisposableDomain(domain: string): string | null {
  const labels = domain.split('.');
  // Stops before the last label: no top-level domain is disposable, and `com` must never match.
  for (let i = 0; i < labels.length - 1; i++) {
    const candidate = labels.slice(i).join('.');
    if (DISPOSABLE_DOMAINS.has(candidate)) return candidate;
  }
  return null;
}

/** The domain of an address, lower case, without the trailing dot a fully qualified name may carry. */
function emailDomain(email: string): string | null {
  const at = email.lastIndexOf('@');
  if (at === -1) return null;
  const domain = email
    .slice(at + 1)
    .trim()
    .toLowerCase()
    .replace(/\.$/, '');
  return domain === '' ? null : domain;
}

/** Whether the address is at a throwaway-mailbox provider of mailchecker's list, or a subdomain of one. */
export function isDisposableEmail(email: string): boolean {
  const domain = emailDomain(email);
  return domain !== null && listedDisposableDomain(domain) !== null;
}

/** An address worth comparing: one with a mailbox and a domain, so two blanks never count as the same. */
const comparable = (normalized: string) => /^[^@]+@[^@]+$/.test(normalized);

const fingerprintTail = (fingerprint: string) => fingerprint.slice(-4);

/** The value, when it is a non-empty string that `known` holds: a blank never matches a blank. */
const matchIn = (value: string | null, known: readonly string[]) =>
  value !== null && value !== '' && known.includes(value) ? value : null;

const selfReferral: Check = (e) => {
  if (e.order.buyerEmail === null) return null;
  const buyer = normalizeEmail(e.order.buyerEmail);
  if (!comparable(buyer) || buyer !== normalizeEmail(e.affiliate.email)) return null;
  return {
    matched: 'buyer email is the affiliate email after normalising case, +tag and Gmail dots',
    identical_as_written: e.order.buyerEmail.trim() === e.affiliate.email.trim(),
    normalized_email_sha256: sha256Hex(buyer),
  };
};

const sameCustomer: Check = (e) => {
  const customer = matchIn(e.order.customerId, e.affiliate.customerIds);
  return customer === null
    ? null
    : { matched: "the order's Stripe customer is one of the affiliate's own", customer_id: customer };
};

const affiliateCard: Check = (e) => {
  const card = matchIn(e.order.cardFingerprint, e.affiliate.cardFingerprints);
  return card === null
    ? null
    : {
        matched: "the card's fingerprint was seen on the affiliate's own purchases",
        card_fingerprint_last4: fingerprintTail(card),
      };
};

const affiliateIp: Check = (e) => {
  const ip = matchIn(e.order.buyerIpHash, e.affiliate.ipHashes);
  return ip === null
    ? null
    : { matched: "the buyer's IP is one the affiliate clicked or checked out from", buyer_ip_hash: ip };
};

/** The limit counts this conversion: with 10 per hour the 10th passes and the 11th fires. */
const codeVelocity: Check = (e, config) => {
  const inHour = e.velocity.codeConversionsLastHour + 1;
  const max = config.code_velocity.maxPerHour;
  return inHour > max ? { conversions_in_hour: inHour, max_per_hour: max } : null;
};

const ipVelocity: Check = (e, config) => {
  const inDay = e.velocity.ipPurchasesLastDay + 1;
  const max = config.ip_velocity.maxPerDay;
  if (inDay <= max || e.order.buyerIpHash === null || e.order.buyerIpHash === '') return null;
  return { purchases_in_day: inDay, max_per_day: max, buyer_ip_hash: e.order.buyerIpHash };
};

const radarRisk: Check = (e, config) => {
  const level = e.order.riskLevel?.toLowerCase() ?? null;
  const levels: readonly string[] = config.radar_risk.levels;
  return level !== null && levels.includes(level) ? { risk_level: level, levels_that_fire: levels } : null;
};

/**
 * Inclusive: the configured amount is the smallest that is reviewed ("orders of $1,000 and up"), so an order
 * of exactly that amount fires and one minor unit less does not. A currency without an amount is reviewed
 * whatever the amount (see REVIEW_AMOUNTS in referrals.fraud-config.ts for why).
 */
const manualReviewAmount: Check = (e, config) => {
  const currency = e.order.currency.toLowerCase();
  const { reviewFrom } = config.manual_review_amount;
  const amount = { amount: e.order.amount, currency, amount_shown: formatAmount(e.order.amount, currency) };
  if (!Object.hasOwn(reviewFrom, currency)) {
    return { ...amount, review_from: null, reason: 'no review amount is configured for this currency' };
  }
  const from = reviewFrom[currency]!;
  if (e.order.amount < from) return null;
  return { ...amount, review_from: from, review_from_shown: formatAmount(from, currency) };
};

const disposableEmail: Check = (e) => {
  const domain = e.order.buyerEmail === null ? null : emailDomain(e.order.buyerEmail);
  const listed = domain === null ? null : listedDisposableDomain(domain);
  return listed === null ? null : { email_domain: domain, listed_domain: listed, list: 'mailchecker' };
};

const COMMISSION_CHECKS: Readonly<Record<Exclude<FraudRule, 'refund_rate'>, Check>> = {
  self_referral: selfReferral,
  same_customer: sameCustomer,
  affiliate_card: affiliateCard,
  affiliate_ip: affiliateIp,
  code_velocity: codeVelocity,
  ip_velocity: ipVelocity,
  radar_risk: radarRisk,
  manual_review_amount: manualReviewAmount,
  disposable_email: disposableEmail,
};

/** Every rule that fires, each with its configured mode and the evidence that made it fire (never secrets, never raw IPs). */
export function evaluateCommission(e: FraudEvidence, config: FraudConfig): FraudDecision[] {
  const decisions: FraudDecision[] = [];
  // FRAUD_RULES fixes the order, so the same order always yields the same decisions in the same sequence.
  for (const rule of FRAUD_RULES) {
    if (rule === 'refund_rate') continue;
    const mode = config[rule].mode;
    if (mode === 'off') continue;
    const evidence = COMMISSION_CHECKS[rule](e, config);
    if (evidence) decisions.push({ rule, mode, evidence: { order_id: e.order.id, ...evidence } });
  }
  return decisions;
}

/**
 * The refund-rate rule, judged when a payout is asked for: null when the affiliate may be paid. Strictly
 * above the rate (at 0.3, 3 refunds in 10 orders pass and 4 fire), and only from the minimum number of
 * referred orders, below which one unlucky refund would read as a high rate.
 */
export function payoutHold(
  stats: { referredOrders: number; refundedOrders: number },
  config: FraudConfig,
): FraudDecision | null {
  const { mode, maxRate, minReferredOrders } = config.refund_rate;
  if (mode === 'off' || stats.referredOrders < minReferredOrders) return null;
  // Integer division gives the same double as the decimal it equals (3 / 10 === 0.3), so the edge is exact.
  const rate = stats.refundedOrders / stats.referredOrders;
  if (!(rate > maxRate)) return null;
  return {
    rule: 'refund_rate',
    mode,
    evidence: {
      referred_orders: stats.referredOrders,
      refunded_orders: stats.refundedOrders,
      // In basis points: the audit log keeps integers only, so the record reads back exactly as hashed.
      refund_rate_bp: Math.round(rate * 10_000),
      max_rate_bp: Math.round(maxRate * 10_000),
      min_referred_orders: minReferredOrders,
    },
  };
}

/** Whether the decisions put the commission or payout on hold: any in `enforce` mode; shadow ones only flag. */
export const isHeld = (decisions: readonly FraudDecision[]) => decisions.some((d) => d.mode === 'enforce');
