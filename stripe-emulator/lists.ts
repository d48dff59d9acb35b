import { invalidParam } from './errors.js';
import { asInt, asString, asStringArray, type Params } from './params.js';

export interface ListPage<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

// Stripe's bounds for `limit` on every list endpoint.
const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;

/**
 * Cursor pagination as Stripe does it over `items` already in list order (newest first for most lists):
 * `starting_after` gives the items after the cursor, `ending_before` the ones right before it (still in
 * list order), and `has_more` says whether more lie beyond the page in the direction of travel.
 */
export function paginate<T extends { id: string }>(items: T[], params: Params, url: string): ListPage<T> {
  const limit = asInt(params['limit'], 'limit', 1) ?? DEFAULT_LIMIT;
  if (limit > MAX_LIMIT) {
    throw invalidParam(`Invalid limit: must be between 1 and ${MAX_LIMIT}.`, 'limit');
  }
  const after = asString(params['starting_after'], 'starting_after');
  const before = asString(params['ending_before'], 'ending_before');
  const find = (id: string, param: string): number => {
    const at = items.findIndex((item) => item.id === id);
    if (at < 0) throw invalidParam(`No such object: '${id}'`, param, 'resource_missing');
    return at;
  };
  if (after !== undefined) {
    const start = find(after, 'starting_after') + 1;
    return {
      object: 'list',
      data: items.slice(start, start + limit),
      has_more: start + limit < items.length,
      url,
    };
  }
  if (before !== undefined) {
    const end = find(before, 'ending_before');
    const start = Math.max(0, end - limit);
    return { object: 'list', data: items.slice(start, end), has_more: start > 0, url };
  }
  return { object: 'list', data: items.slice(0, limit), has_more: items.length > limit, url };
}

/** Filters like `created[gte]=…` or `created=…`, shared by every list that takes them. */
export function matchesRange(value: number, params: Params, name: string): boolean {
  const raw = params[name];
  if (raw === undefined || raw === '') return true;
  if (typeof raw === 'string') return value === asInt(raw, name);
  if (typeof raw !== 'object' || raw === null) throw invalidParam(`Invalid ${name}`, name);
  const range = raw as Params;
  const bound = (op: string) => asInt(range[op], `${name}[${op}]`);
  const gt = bound('gt');
  const gte = bound('gte');
  const lt = bound('lt');
  const lte = bound('lte');
  return (
    (gt === undefined || value > gt) &&
    (gte === undefined || value >= gte) &&
    (lt === undefined || value < lt) &&
    (lte === undefined || value <= lte)
  );
}

/**
 * Looks up what a field of `owner` expands to: the object an id names, or a list Stripe only includes
 * when asked (a session's `line_items`). `undefined` means the field cannot be expanded.
 */
export type FieldExpander = (owner: Record<string, unknown>, field: string) => unknown;

// Stripe refuses expansions nested deeper than four levels.
const MAX_EXPAND_DEPTH = 4;

/** Applies `expand[]` to a JSON copy of a response, as Stripe does. */
export function applyExpand(body: unknown, params: Params, expandField: FieldExpander): unknown {
  const paths = asStringArray(params['expand'], 'expand') ?? [];
  for (const path of paths) {
    const segments = path.split('.');
    if (segments.length > MAX_EXPAND_DEPTH) {
      throw invalidParam(`You cannot expand more than ${MAX_EXPAND_DEPTH} levels of a property.`, 'expand');
    }
    expandPath(body, segments, path, expandField);
  }
  return body;
}

function expandPath(node: unknown, segments: string[], path: string, expandField: FieldExpander): void {
  const [head, ...rest] = segments;
  if (head === undefined || typeof node !== 'object' || node === null) return;
  if (Array.isArray(node)) {
    for (const item of node) expandPath(item, segments, path, expandField);
    return;
  }
  const owner = node as Record<string, unknown>;
  const current = owner[head];
  if (current === null) return;
  if (typeof current === 'string' || current === undefined) {
    const expanded = expandField(owner, head);
    if (expanded === undefined) {
      throw invalidParam(`This property cannot be expanded (${path}).`, 'expand');
    }
    owner[head] = expanded;
  }
  expandPath(owner[head], rest, path, expandField);
}
