import type Stripe from 'stripe';
import type { Db } from '../../ports/db.js';
import { defineModule } from '../module.js';
import type { CallRequest, PhaseHooks } from '../stripe-calls/index.js';
import type { ReferralResolver } from './checkout.create.js';
import { type CheckoutInput, checkoutCallSpec, createCheckoutSession } from './checkout.create.js';
import { checkoutRoutes } from './checkout.routes.js';
import { describeSession } from './checkout.sessions.js';

/**
 * Stripe Checkout (DESIGN §1, §5): creating Checkout Sessions for orders in atomic phases, and the default
 * success and cancel pages. Owns `checkout_sessions` and `stripe_checkout_outcomes` (how each session's payment
 * ended); the payments module reads them through the functions below.
 */
export type {
  CheckoutInput,
  CheckoutParams,
  CheckoutSessionView,
  ReferralResolver,
} from './checkout.create.js';
export {
  isOwnSession,
  newSessionUnderWay,
  otherOpenSessions,
  outcomeOf,
  recordOutcome,
  type SessionOutcome,
  type SessionSeen,
  sessionOfOrder,
  sessionsCharging,
  wasReplaced,
} from './checkout.sessions.js';
export type { CheckoutSessionRow } from './checkout.sql.js';

export interface CheckoutModuleDeps {
  db: Db;
  stripe: Stripe;
  publicUrl: string;
  /** How a checkout's referral code is attributed (the referral programme's `resolveCode`). */
  resolveReferral: ReferralResolver;
  /** Test seam of the atomic phases (a crash after Stripe answered). */
  hooks?: PhaseHooks;
}

export function createCheckoutModule(deps: CheckoutModuleDeps) {
  const callSpec = checkoutCallSpec(deps.stripe);
  const actions = {
    createSession: (input: CheckoutInput, request: CallRequest) =>
      createCheckoutSession(deps, callSpec, input, request),
    describeSession: (sessionId: string) => describeSession(deps.db, deps.stripe, sessionId),
  };
  return defineModule({
    name: 'checkout',
    ...actions,
    /** How the completer finishes a Checkout Session call a crash left pending. */
    callSpec,
    routes: checkoutRoutes(actions),
  });
}

export type CheckoutModule = ReturnType<typeof createCheckoutModule>;
