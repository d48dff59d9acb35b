import { setTimeout as sleep } from 'node:timers/promises';
import type { Queryable } from '../../ports/db.js';
import { randomBase62 } from '../../shared/ids.js';
import { createKey, revokeKeysNamed } from '../auth/index.js';
import type { CheckoutInput, CheckoutSessionView } from '../checkout/index.js';
import type { ReferralsModule } from '../referrals/index.js';
import { CURRENCY, PRODUCTS } from './storefront.catalog.js';

/**
 * Demo data for `npm start` on the embedded defaults, made through the real paths: affiliates and codes
 * through the referral programme, clicks through `/r/:code`, orders through the checkout module and the
 * emulator, paid by the emulator's signed webhooks as the inbox applies them, refunds through the payments
 * module, approval and a payout through the programme. Only the programme's clock is moved back while an
 * order is made, so its commission and ledger lines fall over the past weeks (orders keep their real times).
 */

export interface SeedDeps {
  db: Queryable;
  publicUrl: string;
  emulatorUrl: string;
  referrals: Pick<
    ReferralsModule,
    'createAffiliate' | 'addCode' | 'listAffiliates' | 'approveDue' | 'createPayout'
  >;
  createSession(
    input: CheckoutInput,
    request: { cause: string; requestId: string | null },
  ): Promise<CheckoutSessionView>;
  createRefund(
    input: { orderId: string; amount?: number },
    request: { requestId: string | null },
  ): Promise<unknown>;
  orderStatus(orderId: string): Promise<string | null>;
  /** Moves the referral programme's clock by this many milliseconds (0: real time again). */
  shiftClock(ms: number): void;
}

export interface DemoKeys {
  admin: string;
  affiliate: string;
  seeded: boolean;
}

const DAY_MS = 86_400_000;
const ADA = { name: 'Ada Demo', email: 'ada@demo.example', code: 'ADA10', basis_points: 1000 };
const BEN = { name: 'Ben Demo', email: 'ben@demo.example', code: 'BEN15', basis_points: 1500 };
const ACTOR = 'demo:seed';

interface DemoOrder {
  daysAgo: number;
  code: string;
  product: number;
  quantity: number;
  email?: string;
  refund?: 'full' | number;
}

/** Ada's oldest orders are past their hold (approved, then paid out); Ben's show refunds and a fraud hold. */
const PAID_OUT: DemoOrder[] = [
  { daysAgo: 40, code: ADA.code, product: 0, quantity: 2 },
  { daysAgo: 36, code: ADA.code, product: 3, quantity: 1 },
];
const LATER: DemoOrder[] = [
  { daysAgo: 34, code: BEN.code, product: 2, quantity: 1 },
  { daysAgo: 25, code: BEN.code, product: 3, quantity: 1, refund: 'full' },
  { daysAgo: 18, code: BEN.code, product: 0, quantity: 3, refund: 2500 },
  { daysAgo: 14, code: ADA.code, product: 1, quantity: 2 },
  { daysAgo: 10, code: BEN.code, product: 2, quantity: 1, email: BEN.email },
  { daysAgo: 7, code: ADA.code, product: 2, quantity: 1 },
  { daysAgo: 4, code: BEN.code, product: 1, quantity: 1 },
  { daysAgo: 1, code: ADA.code, product: 3, quantity: 1 },
];

/**
 * The demo affiliates (once: an existing demo affiliate means an earlier start made them) and this start's
 * demo keys, before the service listens; `fill`, when the affiliates are new, makes their weeks of orders
 * once it does (the emulator's webhooks need the listener).
 */
export async function prepareDemo(
  deps: SeedDeps,
): Promise<{ keys: DemoKeys; fill: (() => Promise<void>) | null }> {
  const existing = (await deps.referrals.listAffiliates({ limit: 100, startingAfter: null })).data;
  const found = existing.find((a) => a.email === ADA.email)?.id;
  const made = found ? null : await createAffiliates(deps);
  const ada = found ?? made![0]!;
  // New demo keys each start; the ones an earlier start printed stop working.
  await revokeKeysNamed(deps.db, 'demo');
  await revokeKeysNamed(deps.db, 'demo-affiliate');
  const admin = await createKey(deps.db, { role: 'admin', name: 'demo' });
  const affiliate = await createKey(deps.db, { role: 'affiliate', affiliateId: ada, name: 'demo-affiliate' });
  return {
    keys: { admin: admin.key, affiliate: affiliate.key, seeded: made !== null },
    fill: made ? () => seedOrders(deps, ada) : null,
  };
}

async function createAffiliates(deps: SeedDeps): Promise<string[]> {
  const made: string[] = [];
  for (const a of [ADA, BEN]) {
    const created = await deps.referrals.createAffiliate(
      { name: a.name, email: a.email, commission: { type: 'percent', basis_points: a.basis_points } },
      ACTOR,
    );
    await deps.referrals.addCode(created.id, a.code, ACTOR);
    made.push(created.id);
  }
  return made;
}

async function seedOrders(deps: SeedDeps, ada: string): Promise<void> {
  for (const code of [ADA.code, ADA.code, ADA.code, BEN.code, BEN.code]) {
    await fetch(`${deps.publicUrl}/r/${code}`, { redirect: 'manual' });
  }
  try {
    for (const order of PAID_OUT) await referredOrder(deps, order);
    deps.shiftClock(0);
    await deps.referrals.approveDue();
    await deps.referrals.createPayout({ affiliateId: ada, currency: CURRENCY }, ACTOR);
    for (const order of LATER) await referredOrder(deps, order);
  } finally {
    deps.shiftClock(0);
  }
  await deps.referrals.approveDue();
}

/** One referred order, paid on the emulator's hosted-page path and settled by its signed webhooks. */
async function referredOrder(deps: SeedDeps, o: DemoOrder): Promise<void> {
  deps.shiftClock(-o.daysAgo * DAY_MS);
  const product = PRODUCTS[o.product]!;
  const orderId = `ord_demo_${randomBase62(16)}`;
  const session = await deps.createSession(
    {
      order_id: orderId,
      currency: CURRENCY,
      customer_email: o.email ?? `buyer.${randomBase62(5).toLowerCase()}@shop.example`,
      line_items: [{ name: product.name, unit_amount: product.unit_amount, quantity: o.quantity }],
      referral_code: o.code,
    },
    { cause: 'demo:seed', requestId: null },
  );
  const res = await fetch(`${deps.emulatorUrl}/v1/test_helpers/checkout/sessions/${session.id}/complete`, {
    method: 'POST',
    headers: {
      authorization: 'Bearer sk_test_demo_seed',
      'content-type': 'application/x-www-form-urlencoded',
    },
    // Each buyer their own card: one card for all would make every buyer look like the affiliate.
    body: `outcome=paid&card_fingerprint=fp_demo_${randomBase62(10)}`,
  });
  if (!res.ok) throw new Error(`the emulator refused to complete ${session.id}: ${res.status}`);
  await settled(deps, orderId, ['paid']);
  if (o.refund) {
    await deps.createRefund(
      { orderId, ...(o.refund === 'full' ? {} : { amount: o.refund }) },
      { requestId: null },
    );
    await settled(deps, orderId, ['refunded', 'partially_refunded']);
  }
}

/** Waits for the webhook to bring the order to one of `statuses` (the emulator delivers within moments). */
async function settled(deps: SeedDeps, orderId: string, statuses: string[]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const status = await deps.orderStatus(orderId);
    if (status && statuses.includes(status)) return;
    await sleep(50);
  }
  throw new Error(`demo order ${orderId} did not become ${statuses.join(' or ')}`);
}
