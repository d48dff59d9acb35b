/** A query as text plus positional parameters ($1, $2, …), the shape every `*.sql.ts` function returns. */
export interface Sql {
  text: string;
  values?: readonly unknown[];
}

export interface Rows<R> {
  rows: R[];
  rowCount: number;
}

/** Something that runs queries: the pool, or one transaction's connection. */
export interface Queryable {
  query<R = Record<string, unknown>>(sql: Sql | string, values?: readonly unknown[]): Promise<Rows<R>>;
  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/**
 * The storage port. PostgreSQL (node-postgres pool) and PGlite (in-process, one connection) both implement
 * it and run the same SQL. Inside `tx`, use only the handle it passes: on PGlite a query on the outer `Db`
 * waits for the transaction to end, so it would wait forever.
 */
export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction: commit when it resolves, rollback when it throws (and rethrow). */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** PostgreSQL's type OID for `bigint` (int8), under which both adapters register `parseInt8`. */
export const INT8_OID = 20;

/**
 * `bigint` columns hold money and counters. node-postgres returns them as strings and PGlite as BigInt;
 * both adapters parse them with this into a JS number, refusing any value past 2^53 rather than rounding it.
 */
export function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint ${text} is outside the safe integer range`);
  return n;
}
