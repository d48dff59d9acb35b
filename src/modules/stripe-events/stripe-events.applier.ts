import type { Queryable } from '../../ports/db.js';

/**
 * The seam between the Stripe event inbox (this module: plumbing) and the domain that gives events their
 * meaning (the payments module). The inbox verifies, records, locks and retries; the applier decides what an
 * event does, inside the transaction that holds the event's inbox row.
 */

/** One event as the applier sees it. */
export interface InboxEvent {
  id: string;
  type: string;
  /** `data.object` of the event, as Stripe signed it; the applier reads it with its own schemas. */
  object: unknown;
}

/** The order an event belongs to, once looked up outside any transaction. */
export interface OrderResolution {
  orderId: string | null;
}

/**
 * What applying an event came to. `orderId` is the order it was resolved to: events deferred on an order are
 * woken when it moves (`wake`).
 */
export type AppliedOutcome =
  | { status: 'done'; reason: string | null; orderId: string | null; wake: boolean }
  /** It arrived before something it depends on; it is retried with backoff, or woken when its order moves. */
  | { status: 'deferred'; reason: string; orderId: string }
  /** Recorded and deliberately not applied (an order we never made, an event type we do not act on). */
  | { status: 'ignored'; reason: string; orderId: string | null }
  /** Signed by Stripe yet unreadable: retrying cannot help, a person has to look. */
  | { status: 'failed'; reason: string; orderId: null };

export type ApplyStep =
  | AppliedOutcome
  /**
   * The event's order can only be found by asking Stripe, which must not happen while holding row locks: the
   * inbox commits nothing, runs `lookup` outside the transaction, and applies the event again with its answer.
   */
  | { lookup: () => Promise<OrderResolution> };

export interface EventApplier {
  /** The event types it acts on: reconciliation lists only these. */
  types: readonly string[];
  /**
   * Applies `event` through `q`, the transaction that holds its inbox row. Every effect must be safe to apply
   * once and only once per event: the inbox guarantees it runs to commit once, and may run it and roll back
   * any number of times. `resolved` is the answer of an earlier `lookup`.
   */
  apply(q: Queryable, event: InboxEvent, resolved: OrderResolution | undefined): Promise<ApplyStep>;
}
