import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/shared/paths.js';

const ROOT = packageRoot();
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/** Every `file` › name the plan cites, in table cells (several in one cell are separated by "; "). */
function citedTests(plan: string): Array<{ file: string; name: string }> {
  const cited: Array<{ file: string; name: string }> = [];
  for (const match of plan.matchAll(/`([^`]+\.test\.ts)` › (.+?)(?=\s*;\s*`|\s*\|)/g)) {
    cited.push({ file: match[1]!, name: match[2]! });
  }
  return cited;
}

describe('webhook design documents', () => {
  it('has ADR-009 with its context, decision, alternatives and consequences', () => {
    const adr = read('docs/adr/ADR-009-stripe-checkout-and-exactly-once-webhooks.md');
    for (const section of ['## Context', '## Decision', '## Alternatives weighed', '## Consequences']) {
      expect(adr).toContain(section);
    }
    for (const alternative of ['A Redis lock alone', 'Queue first', "Trusting Stripe's retries"]) {
      expect(adr).toContain(alternative);
    }
  });

  it('names in the duplicates test plan only tests that exist and run in npm test', () => {
    const cited = citedTests(read('docs/test-plan-duplicates.md'));
    expect(cited.length).toBeGreaterThanOrEqual(30);
    for (const { file, name } of cited) {
      // vitest.config.ts runs src/**/*.test.ts and test/**/*.test.ts.
      expect(file, file).toMatch(/^(src|test)\/.+\.test\.ts$/);
      expect(existsSync(join(ROOT, file)), file).toBe(true);
      const source = read(file);
      const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      // Declared as a plain `it` (not skipped), however the formatter wrapped the call.
      expect(source, `${file} › ${name}`).toMatch(new RegExp(`\\bit\\(\\s*'${escaped}',`));
    }
  });
});
