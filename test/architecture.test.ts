import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../src/shared/paths.js';

/**
 * Holds the code to docs/architecture.md: the table ownership map is read from that page, and the rules it
 * states (modules reach each other through index.ts, never the composition root, no cycles, SQL only in the
 * owner's *.sql.ts files, small files and functions) are checked over the TypeScript syntax of src/.
 */

const ROOT = packageRoot();
const SRC = join(ROOT, 'src');
const COMPOSITION_ROOT = ['main.ts', 'compose.ts', 'modules.ts', 'app.ts', 'config.ts'].map((f) =>
  join(SRC, f),
);
const MAX_FILE_LINES = 400;
const MAX_FUNCTION_LINES = 80;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path] : [];
  });
}

const FILES = sourceFiles(SRC);
const parsed = new Map(
  FILES.map((f) => [f, ts.createSourceFile(f, readFileSync(f, 'utf8'), ts.ScriptTarget.ES2023, true)]),
);
const rel = (f: string) => relative(ROOT, f);

/** The module a file belongs to: `src/modules/<name>/…` → name, `src/jobs/…` → jobs, else null. */
function moduleOf(file: string): string | null {
  const parts = relative(SRC, file).split('/');
  if (parts[0] === 'modules' && parts.length > 2) return parts[1]!;
  if (parts[0] === 'jobs') return 'jobs';
  return null;
}

/** `table → owner` from the ownership table of docs/architecture.md. */
function ownershipMap(): Map<string, string> {
  const page = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
  const section = page.slice(page.indexOf('| table | owner |'));
  const rows = section.split('\n').slice(2);
  const map = new Map<string, string>();
  for (const row of rows) {
    const m = /^\| `([a-z_]+)` \| `([a-z-]+)` \|$/.exec(row.trim());
    if (!m) break;
    map.set(m[1]!, m[2]!);
  }
  return map;
}

/**
 * Every string and template text in a file (where SQL lives, whatever the comments say), and the tables named
 * as a queue's `table:` property.
 */
function literals(source: ts.SourceFile): { texts: string[]; tableProps: string[] } {
  const texts: string[] = [];
  const tableProps: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      ts.isPropertyAssignment(node) &&
      node.name.getText() === 'table' &&
      ts.isStringLiteral(node.initializer)
    )
      tableProps.push(node.initializer.text);
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    )
      texts.push(node.text);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { texts, tableProps };
}

/** The tables a piece of text names as SQL does (`from x`, `into x`, `update x`, …). */
function tablesNamed(text: string, tables: ReadonlySet<string>): string[] {
  const named = new Set<string>();
  for (const m of text.matchAll(/\b(?:from|join|into|update|table|exists)\s+([a-z_][a-z0-9_]*)/gi)) {
    if (tables.has(m[1]!)) named.add(m[1]!);
  }
  return [...named];
}

/** Relative imports and re-exports of a file, resolved to .ts paths. */
function importsOf(file: string): string[] {
  const source = parsed.get(file)!;
  const targets: string[] = [];
  for (const statement of source.statements) {
    const specifier =
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) && statement.moduleSpecifier
        ? (statement.moduleSpecifier as ts.StringLiteral).text
        : undefined;
    if (specifier?.startsWith('.')) targets.push(resolve(dirname(file), specifier).replace(/\.js$/, '.ts'));
  }
  return targets;
}

/** A cycle in `graph`, as the nodes along it, or null. */
function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    if (state.get(node) === 'done') return null;
    if (state.get(node) === 'open') return [...path.slice(path.indexOf(node)), node];
    state.set(node, 'open');
    path.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(node, 'done');
    return null;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

describe('docs/architecture.md, held to the code', () => {
  const owners = ownershipMap();
  const tables = new Set(owners.keys());

  it('has an owner for every table the migrations create, and no table they do not', () => {
    const created = new Set<string>();
    for (const f of readdirSync(join(ROOT, 'migrations'))) {
      const sql = readFileSync(join(ROOT, 'migrations', f), 'utf8');
      for (const m of sql.matchAll(/create table (?:if not exists )?([a-z_]+)/g)) created.add(m[1]!);
      for (const m of sql.matchAll(/alter table ([a-z_]+) rename to ([a-z_]+)/g)) {
        created.delete(m[1]!);
        created.add(m[2]!);
      }
    }
    // The migration runner's own table is created by src/db/migrate.ts, not by a migration.
    expect([...created].sort()).toEqual([...tables].filter((t) => t !== 'schema_migrations').sort());
  });

  it('finds SQL only in *.sql.ts files, each naming only tables its module owns', () => {
    const problems: string[] = [];
    for (const [file, source] of parsed) {
      const module = moduleOf(file);
      if (!module) continue;
      const { texts, tableProps } = literals(source);
      for (const table of [...texts.flatMap((t) => tablesNamed(t, tables)), ...tableProps]) {
        if (!file.endsWith('.sql.ts'))
          problems.push(`${rel(file)}: SQL naming ${table} outside a .sql.ts file`);
        else if (owners.get(table) !== module)
          problems.push(`${rel(file)}: names ${table}, owned by ${owners.get(table)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('catches a module naming a table it does not own (the check itself can fail)', () => {
    expect(tablesNamed('select * from stripe_events where id = $1', tables)).toEqual(['stripe_events']);
    expect(tablesNamed(`update outbox job set attempts = job.attempts + 1`, tables)).toEqual(['outbox']);
    expect(tablesNamed('refunds from Stripe', tables)).toEqual([]);
  });

  it('lets modules reach each other only through index.ts, and never the composition root', () => {
    const problems: string[] = [];
    for (const file of FILES) {
      const module = moduleOf(file);
      if (
        file.startsWith(join(SRC, 'modules', '/')) ||
        ['jobs', 'ports', 'adapters', 'shared'].includes(relative(SRC, file).split('/')[0]!)
      ) {
        for (const target of importsOf(file)) {
          if (COMPOSITION_ROOT.includes(target))
            problems.push(`${rel(file)} imports the composition root ${rel(target)}`);
          const other = moduleOf(target);
          if (module && other && other !== module && !target.endsWith('/index.ts'))
            problems.push(`${rel(file)} reaches into ${rel(target)} instead of ${other}'s index.ts`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('has no import cycle, between files or between modules', () => {
    const files = new Map(FILES.map((f) => [f, importsOf(f)]));
    expect(findCycle(files)?.map(rel) ?? null).toBeNull();
    const modules = new Map<string, string[]>();
    for (const [file, targets] of files) {
      const from = moduleOf(file);
      if (!from) continue;
      const to = targets.map(moduleOf).filter((m): m is string => m !== null && m !== from);
      modules.set(from, [...new Set([...(modules.get(from) ?? []), ...to])]);
    }
    expect(findCycle(modules)).toBeNull();
    // The check itself finds a cycle when there is one.
    expect(
      findCycle(
        new Map([
          ['a', ['b']],
          ['b', ['a']],
        ]),
      ),
    ).toEqual(['a', 'b', 'a']);
  });

  it(`keeps files under ${MAX_FILE_LINES} lines and functions under ${MAX_FUNCTION_LINES}, or says why`, () => {
    const problems: string[] = [];
    for (const [file, source] of parsed) {
      const text = source.getFullText();
      const lines = text.split('\n').length;
      if (lines > MAX_FILE_LINES && !/long file:/.test(text)) problems.push(`${rel(file)}: ${lines} lines`);
      const visit = (node: ts.Node) => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body) {
          const start = source.getLineAndCharacterOfPosition(node.getStart()).line;
          const end = source.getLineAndCharacterOfPosition(node.getEnd()).line;
          const leading = text.slice(node.getFullStart(), node.getStart());
          if (end - start + 1 > MAX_FUNCTION_LINES && !/long function:/.test(leading))
            problems.push(`${rel(file)}:${start + 1}: a function of ${end - start + 1} lines`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(problems).toEqual([]);
  });
});
