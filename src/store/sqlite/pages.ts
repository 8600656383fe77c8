import type BetterSqlite3 from 'better-sqlite3';
import type { SelectQueryBuilder } from 'kysely';
import { afterCondition, keysetOf, orderTerms, type Sort } from '../sql/keyset.js';
import type { Keyset } from '../store.js';

/** Rows per batch of a stream: small enough that one batch never holds the event loop long. */
export const STREAM_BATCH = 1000;

/** `query` in the order of `sort`, continuing strictly after `after`, at most `limit` rows. */
export function page<DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  sort: Sort,
  after: Keyset | null,
  limit: number,
): SelectQueryBuilder<DB, TB, O> {
  let paged = after === null ? query : query.where(afterCondition(sort, after));
  for (const term of orderTerms(sort)) paged = paged.orderBy(term);
  return paged.limit(limit);
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Every row of `query` in keyset batches read from `reader`, a read-only connection of its own: each
 * batch is one short statement, and the event loop runs between batches, so a long export neither
 * waits for writers nor holds up other requests.
 */
export async function* streamPages<DB, TB extends keyof DB, O, T>(
  reader: BetterSqlite3.Database,
  query: SelectQueryBuilder<DB, TB, O>,
  sort: Sort,
  toItem: (row: O) => T,
): AsyncGenerator<T[]> {
  let after: Keyset | null = null;
  for (;;) {
    const compiled = page(query, sort, after, STREAM_BATCH).compile();
    const rows = reader.prepare(compiled.sql).all(...compiled.parameters) as O[];
    if (rows.length > 0) yield rows.map(toItem);
    const last = rows.at(-1);
    if (rows.length < STREAM_BATCH || last === undefined) return;
    after = keysetOf(sort, last as Record<string, unknown>);
    await yieldToEventLoop();
  }
}
