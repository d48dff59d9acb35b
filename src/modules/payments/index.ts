import type Stripe from 'stripe';
import type { Db } from '../../ports/db.js';
import { defineModule } from '../module.js';
import type { OrderRow } from '../orders/index.js';
import { paymentEventApplier } from './payments.events.js';
import type { PaymentFactSubscriber } from './payments.facts.js';
import { createRefund, type RefundInput, refundCallSpec } from './payments.refund-requests.js';
import { refundRoutes } from './payments.routes.js';

/**
 * The payments domain: what a paid Checkout Session, a refund and a dispute mean for an order (DESIGN §3, §4),
 * applied to Stripe's events inside the transaction the inbox holds; refunds asked for through the API; and the
 * seam of payment facts the referral programme subscribes to. Owns `stripe_refunds`, `stripe_charges`,
 * `stripe_disputes` and `stripe_charge_details`.
 */
export type {
  ChargeDetails,
  DisputeClosed,
  DisputeOpened,
  PaymentCaptured,
  PaymentFact,
  PaymentFactSubscriber,
  RefundReverted,
  RefundSettled,
} from './payments.facts.js';
export type { RefundParams, RefundView } from './payments.refund-requests.js';

export interface PaymentsDeps {
  db: Db;
  stripe: Stripe;
  /** Who hears of each payment fact, in the transaction that applies the event (the referral programme). */
  subscribers: readonly PaymentFactSubscriber[];
  /**
   * Whether a capture's fact is worth the charge's evidence (card fingerprint, Radar's risk level), which may
   * mean asking Stripe. Default: whenever anyone subscribes.
   */
  wantsEvidence?: (order: OrderRow) => boolean;
}

export function createPaymentsModule(deps: PaymentsDeps) {
  const callSpec = refundCallSpec(deps.stripe);
  const refund = (input: RefundInput, request: { requestId: string | null }) =>
    createRefund({ db: deps.db, stripe: deps.stripe, spec: callSpec }, input, request);
  return defineModule({
    name: 'payments',
    createRefund: refund,
    /** What the Stripe event inbox applies events with. */
    applier: paymentEventApplier({
      stripe: deps.stripe,
      subscribers: deps.subscribers,
      wantsEvidence: deps.wantsEvidence ?? (() => deps.subscribers.length > 0),
    }),
    /** How the completer finishes a refund call a crash left pending. */
    refundCallSpec: callSpec,
    routes: refundRoutes(refund),
  });
}

export type PaymentsModule = ReturnType<typeof createPaymentsModule>;
