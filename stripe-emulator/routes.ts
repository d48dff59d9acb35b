import { StripeApiError } from './errors.js';
import { PAGE_ACTIONS, renderCheckoutPage, renderNotFoundPage, successRedirect } from './hosted-page.js';
import { cardFingerprint } from './objects.js';
import { asEnum, asString, type Params, rejectUnknown, required } from './params.js';
import { type ApiRoute, type HttpMethod, type PageResponse, type PageRoute, pathPattern } from './server.js';
import { BUYER_ACTION, type EmulatorState } from './state.js';
import type { WebhookDispatcher } from './webhooks.js';

function api(method: HttpMethod, path: string, handle: ApiRoute['handle']): ApiRoute {
  return { method, pattern: pathPattern(path), handle };
}

/** A retrieve endpoint takes nothing but `expand`. */
function retrieve(params: Params): void {
  rejectUnknown(params, []);
}

const arg = (args: string[], i: number): string => args[i] ?? '';

/** The Stripe API subset of CONTRACT §5, plus the test helpers that drive buyers and webhooks. */
export function apiRoutes(state: EmulatorState, webhooks: WebhookDispatcher): ApiRoute[] {
  return [
    api('POST', '/v1/checkout/sessions', ({ params }) => state.createSession(params)),
    api('GET', '/v1/checkout/sessions', ({ params }) => state.listSessions(params)),
    api('GET', '/v1/checkout/sessions/:id', ({ params, args }) => {
      retrieve(params);
      return state.getSession(arg(args, 0));
    }),
    api('POST', '/v1/checkout/sessions/:id/expire', ({ params, args, ctx }) => {
      retrieve(params);
      return state.expireSession(arg(args, 0), ctx);
    }),
    api('GET', '/v1/checkout/sessions/:id/line_items', ({ params, args }) =>
      state.listLineItems(arg(args, 0), params),
    ),
    api('GET', '/v1/payment_intents/:id', ({ params, args }) => {
      retrieve(params);
      return state.getPaymentIntent(arg(args, 0));
    }),
    api('GET', '/v1/charges/:id', ({ params, args }) => {
      retrieve(params);
      return state.getCharge(arg(args, 0), 'id');
    }),
    api('POST', '/v1/refunds', ({ params, ctx }) => state.createRefund(params, ctx)),
    api('GET', '/v1/refunds', ({ params }) => state.listRefunds(params)),
    api('GET', '/v1/refunds/:id', ({ params, args }) => {
      retrieve(params);
      return state.getRefund(arg(args, 0));
    }),
    api('GET', '/v1/disputes/:id', ({ params, args }) => {
      retrieve(params);
      return state.getDispute(arg(args, 0));
    }),
    api('GET', '/v1/events', ({ params }) => state.listEvents(params)),
    api('GET', '/v1/events/:id', ({ params, args }) => {
      retrieve(params);
      return state.getEvent(arg(args, 0));
    }),
    api('POST', '/v1/webhook_endpoints', ({ params }) => webhooks.createEndpoint(params)),
    api('GET', '/v1/webhook_endpoints', ({ params }) => webhooks.listEndpoints(params)),
    api('GET', '/v1/webhook_endpoints/:id', ({ params, args }) => {
      retrieve(params);
      return webhooks.getEndpoint(arg(args, 0));
    }),
    api('POST', '/v1/webhook_endpoints/:id', ({ params, args }) =>
      webhooks.updateEndpoint(arg(args, 0), params),
    ),
    api('DELETE', '/v1/webhook_endpoints/:id', ({ args }) => webhooks.deleteEndpoint(arg(args, 0))),

    api('POST', '/v1/test_helpers/checkout/sessions/:id/complete', ({ params, args, ctx }) => {
      rejectUnknown(params, ['outcome', 'customer_email', 'card_fingerprint', 'risk_level', 'customer']);
      const outcome = required(
        asEnum(params['outcome'], 'outcome', ['paid', 'async_pending', 'declined']),
        'outcome',
      );
      const customer = asString(params['customer'], 'customer');
      if (customer !== undefined && !customer.startsWith('cus_')) {
        throw new StripeApiError(400, {
          type: 'invalid_request_error',
          message: `Invalid customer id: '${customer}' (expected cus_…).`,
          param: 'customer',
        });
      }
      const customerEmail = asString(params['customer_email'], 'customer_email');
      const fingerprint = asString(params['card_fingerprint'], 'card_fingerprint');
      const riskLevel = asEnum(params['risk_level'], 'risk_level', ['normal', 'elevated', 'highest']);
      return state.completeSession(
        arg(args, 0),
        outcome,
        {
          ...(customerEmail === undefined ? {} : { customerEmail }),
          ...(customer === undefined ? {} : { customer }),
          ...(fingerprint === undefined ? {} : { cardFingerprint: fingerprint }),
          ...(riskLevel === undefined ? {} : { riskLevel }),
        },
        ctx,
      );
    }),
    api('POST', '/v1/test_helpers/payment_intents/:id/async_result', ({ params, args, ctx }) => {
      rejectUnknown(params, ['result']);
      const result = required(asEnum(params['result'], 'result', ['succeeded', 'failed']), 'result');
      return state.settleAsyncPayment(arg(args, 0), result, ctx);
    }),
    api('POST', '/v1/test_helpers/charges/:id/dispute', ({ params, args, ctx }) =>
      state.createDispute(arg(args, 0), params, ctx),
    ),
    api('POST', '/v1/test_helpers/disputes/:id/close', ({ params, args, ctx }) =>
      state.closeDispute(arg(args, 0), params, ctx),
    ),
    api('POST', '/v1/test_helpers/webhooks/chaos', ({ params }) => webhooks.configure(params)),
    api('GET', '/v1/test_helpers/webhooks/chaos', ({ params }) => {
      retrieve(params);
      return webhooks.settings();
    }),
    api('POST', '/v1/test_helpers/events/:id/resend', ({ params, args }) => {
      const event = state.getEvent(arg(args, 0));
      webhooks.resend(event, params);
      return event;
    }),
    api('GET', '/v1/test_helpers/deliveries', ({ params }) => webhooks.listAttempts(params)),
  ];
}

function page(method: HttpMethod, path: string, handle: PageRoute['handle']): PageRoute {
  return { method, pattern: pathPattern(path), handle };
}

// The test card Stripe documents for a generic decline; typing it on the page declines, as on Stripe.
const DECLINED_CARD = '4000000000000002';

/** The hosted Checkout page a buyer reaches through a session's `url`. */
export function pageRoutes(state: EmulatorState): PageRoute[] {
  const notFound: PageResponse = { status: 404, html: renderNotFoundPage() };
  const show = (id: string, status = 200, error?: string): PageResponse => {
    try {
      const session = state.getSession(id);
      const lineItems = state.sessionLineItems(id);
      return { status, html: renderCheckoutPage({ session, lineItems, ...(error ? { error } : {}) }) };
    } catch {
      return notFound;
    }
  };
  return [
    page('GET', '/', () => ({
      status: 200,
      html: '<!doctype html><title>Stripe emulator</title><p>Stripe emulator: the API is under <code>/v1</code>.</p>',
    })),
    page('GET', '/checkout/:id', ({ args }) => show(arg(args, 0))),
    page('POST', '/checkout/:id/pay', ({ args, form }) => {
      const id = arg(args, 0);
      const action = PAGE_ACTIONS.find((a) => a === form['action']);
      if (!action) return show(id, 400, 'Choose how to pay.');
      const email = typeof form['email'] === 'string' && form['email'] !== '' ? form['email'] : undefined;
      const digits = typeof form['card_number'] === 'string' ? form['card_number'].replace(/\D/g, '') : '';
      const declined = action === 'declined' || (action === 'card' && digits === DECLINED_CARD);
      const card = digits.length >= 12 && digits.length <= 19 && !declined ? digits : undefined;
      try {
        const session = state.completeSession(
          id,
          declined ? 'declined' : action === 'card' ? 'paid' : 'async_pending',
          {
            ...(email ? { customerEmail: email } : {}),
            ...(card ? { cardFingerprint: cardFingerprint(card), cardLast4: card.slice(-4) } : {}),
          },
          BUYER_ACTION,
        );
        if (declined) return show(id, 402, 'Your card was declined. Try another payment method.');
        return { redirect: successRedirect(session) ?? `/checkout/${encodeURIComponent(id)}` };
      } catch (err) {
        if (err instanceof StripeApiError && err.status === 404) return notFound;
        if (err instanceof StripeApiError) return show(id, 409, err.message);
        throw err;
      }
    }),
    page('POST', '/checkout/:id/cancel', ({ args }) => {
      const id = arg(args, 0);
      try {
        const session = state.getSession(id);
        return { redirect: session.cancel_url ?? `/checkout/${encodeURIComponent(id)}` };
      } catch {
        return notFound;
      }
    }),
  ];
}
