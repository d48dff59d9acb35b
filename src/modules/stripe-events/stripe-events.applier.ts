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
  /**
   * The connected account the event happened on (Stripe Connect), or null for this service's own account.
   * An event of another account is never about this service's payments, whatever its object names.
   */
  account: string | null;
  /** `data.object` of the event, as Stripe signed it; the applier reads it with its own schemas. */
  object: unknown;
}

/**
 * What lookups outside the transaction found (which order a charge belongs to, what Stripe says of a charge),
 * handed back to the applier on its next try. Its shape is the applier's own; the inbox only carries it.
 */
export type Resolution = Readonly<Record<string, unknown>>;

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
   * The event needs something only Stripe can say (its order, a charge's details), which must not be asked
   * while holding row locks. Returned before writing anything; the inbox ends the transaction, runs `lookup`
   * outside it, and applies the event again with what it found.
   */
  | { lookup: () => Promise<Resolution> };

export interface EventApplier {
  /** The event types it acts on: reconciliation lists only these. */
  types: readonly string[];
  /**
   * Applies `event` through `q`, the transaction that holds its inbox row. Every effect must be safe to apply
   * once and only once per event: the inbox guarantees it runs to commit once, and may run it and roll back
   * any number of times. `resolved` holds what earlier lookups of this try found (empty at first).
   */
  apply(q: Queryable, event: InboxEvent, resolved: Resolution): Promise<ApplyStep>;
}
