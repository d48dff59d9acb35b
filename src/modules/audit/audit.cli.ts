import type { Command } from 'commander';
import { describeBreak } from './audit.chain.js';
import type { VerifyResult } from './audit.verify.js';

/** What the commands use of the module. */
export interface AuditCommandTarget {
  verify(): Promise<VerifyResult>;
}

/** Opens the service's dependencies, runs `use` on this module, and closes them again. */
export type WithAudit = <T>(use: (audit: AuditCommandTarget) => Promise<T>) => Promise<T>;

/**
 * `audit verify [--json]` (CONTRACT §1): exit 0 when every chain holds; else exit 1 with one line on stderr
 * naming the first broken entry (with `--json`, the result is printed on stdout first, whichever it is).
 */
export function registerAuditCommands(program: Command, withAudit: WithAudit): void {
  program
    .command('audit')
    .description('the tamper-evident audit log')
    .command('verify')
    .description('recompute every audit chain; exit 1 naming the first broken entry')
    .option('--json', 'print {"ok": true, "entries", "streams"} or {"ok": false, "first_bad"} on one line')
    .action(async (opts: { json?: boolean }) => {
      const result = await withAudit((audit) => audit.verify());
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      if (!result.ok) throw new Error(describeBreak(result.first_bad));
      if (!opts.json)
        process.stdout.write(`audit log intact: ${result.entries} entries in ${result.streams} streams\n`);
    });
}
