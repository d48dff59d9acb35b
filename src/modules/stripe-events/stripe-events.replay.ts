import { applyEvent, type InboxContext } from './stripe-events.inbox.js';
import {
  type InboxRow,
  type InboxStatus,
  listEvents as listEventsSql,
  reopenEvent,
  selectEventStatus,
} from './stripe-events.sql.js';

/** An inbox row as `events list` shows it (without the payload). */
export type ListedEvent = Omit<InboxRow, 'payload' | 'raw_payload'>;

/** `events list`: the inbox, newest first, optionally one status only. */
export async function listEvents(
  ctx: Pick<InboxContext, 'db'>,
  filter: { status?: InboxStatus; limit?: number } = {},
): Promise<{ data: ListedEvent[]; has_more: boolean }> {
  const limit = filter.limit ?? 100;
  const { rows } = await ctx.db.query<ListedEvent>(listEventsSql(filter.status, limit + 1));
  return { data: rows.slice(0, limit), has_more: rows.length > limit };
}

export interface ReplayResult {
  event_id: string;
  status: InboxStatus;
  reason: string | null;
}

/**
 * `events replay`: reopens an event that is not applied (failed, ignored, deferred, pending) and applies it now.
 * Null when the inbox has no such event; an applied event is left alone (its effects exist).
 */
export async function replayEvent(ctx: InboxContext, eventId: string): Promise<ReplayResult | null> {
  const current = async () =>
    (await ctx.db.query<Pick<InboxRow, 'id' | 'status' | 'reason'>>(selectEventStatus(eventId))).rows[0];
  const reopened = (
    await ctx.db.query<{ id: string; type: string }>(reopenEvent(eventId, ctx.options.lockTimeoutMs * 2))
  ).rows[0];
  if (reopened) {
    await ctx.idempotency.forgetEvent(eventId);
    await applyEvent(ctx, eventId, reopened.type);
  }
  const row = await current();
  return row ? { event_id: row.id, status: row.status, reason: row.reason } : null;
}
