import { type Command, Option } from 'commander';
import { RECONCILE_MAX_WINDOW_MS, type ReconcileSummary } from './stripe-events.reconcile.js';
import type { ListedEvent, ReplayResult } from './stripe-events.replay.js';
import { INBOX_STATUSES, type InboxStatus } from './stripe-events.sql.js';

const UNITS_MS = { s: 1_000, m: 60_000, h: 60 * 60_000, d: 24 * 60 * 60_000 } as const;

/** `90s`, `15m`, `24h`, `7d` → milliseconds; at most Stripe's 30-day event window. */
export function parseWindow(text: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(text.trim());
  if (!match) throw new Error(`--since ${text} is not a duration such as 90s, 15m, 24h or 7d`);
  const ms = Number(match[1]) * UNITS_MS[match[2] as keyof typeof UNITS_MS];
  if (ms <= 0) throw new Error('--since must be longer than 0');
  if (ms > RECONCILE_MAX_WINDOW_MS)
    throw new Error('--since reaches past 30d, the oldest events Stripe keeps');
  return ms;
}

/** What the commands use of the module. */
export interface EventsCommandTarget {
  listEvents(filter: {
    status?: InboxStatus;
    limit?: number;
  }): Promise<{ data: ListedEvent[]; has_more: boolean }>;
  replayEvent(eventId: string): Promise<ReplayResult | null>;
  reconcile(opts: { since: Date }): Promise<ReconcileSummary>;
}

/**
 * Opens the service's dependencies, runs `use` on this module, and closes them again. `needsStripe`: the
 * command talks to Stripe, so the embedded emulator (which lives only inside `serve`) will not do.
 */
export type WithEvents = <T>(
  use: (events: EventsCommandTarget) => Promise<T>,
  opts?: { needsStripe?: boolean },
) => Promise<T>;

const cell = (v: unknown) =>
  v instanceof Date ? v.toISOString() : v === null || v === undefined ? '-' : String(v);

/** `events list`, `events replay` and `reconcile` (CONTRACT §1). */
export function registerEventsCommands(program: Command, withEvents: WithEvents): void {
  const events = program
    .command('events')
    .description('the Stripe event inbox: inspection and dead-letter replay');

  events
    .command('list')
    .description('list inbox events, newest first')
    .addOption(new Option('--status <status>', 'only events with this status').choices(INBOX_STATUSES))
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'print {"data": [...], "has_more": bool} on one line')
    .action(async (opts: { status?: InboxStatus; limit: string; json?: boolean }) => {
      const limit = Number(opts.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        throw new Error('--limit must be a whole number from 1 to 1000');
      const page = await withEvents((events) =>
        events.listEvents({ ...(opts.status ? { status: opts.status } : {}), limit }),
      );
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(page)}\n`);
        return;
      }
      for (const e of page.data) {
        process.stdout.write(
          `${[e.id, e.type, e.status, `attempts=${e.attempts}`, `order=${cell(e.order_id)}`, cell(e.received_at), cell(e.reason)].join('\t')}\n`,
        );
      }
      if (page.data.length === 0) process.stdout.write('no events\n');
    });

  events
    .command('replay <evt_id>')
    .description('reopen an event that was not applied (failed, ignored, deferred, pending) and apply it now')
    .option('--json', 'print {"event_id","status","reason"} on one line')
    .action(async (eventId: string, opts: { json?: boolean }) => {
      const result = await withEvents((events) => events.replayEvent(eventId));
      if (!result) throw new Error(`no event ${eventId} in the inbox`);
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(result)}\n`
          : `${result.event_id}: ${result.status}${result.reason ? ` (${result.reason})` : ''}\n`,
      );
    });

  program
    .command('reconcile')
    .description("list Stripe's events for the window and record and apply any the inbox lacks")
    .option('--since <duration>', 'how far back, e.g. 90m, 24h, 7d (at most 30d)', '24h')
    .option('--json', 'print the summary as JSON on one line')
    .action(async (opts: { since: string; json?: boolean }) => {
      const windowMs = parseWindow(opts.since);
      const summary = await withEvents(
        (events) => events.reconcile({ since: new Date(Date.now() - windowMs) }),
        {
          needsStripe: true,
        },
      );
      process.stdout.write(
        opts.json
          ? `${JSON.stringify(summary)}\n`
          : `listed ${summary.listed} events since ${summary.since}; recorded ${summary.recorded} missing: ` +
              `${summary.applied} applied, ${summary.ignored} ignored, ${summary.waiting} waiting, ` +
              `${summary.failed} failed; ${summary.unreadable} unreadable (not recorded)\n`,
      );
    });
}
