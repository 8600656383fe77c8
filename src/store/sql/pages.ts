import type { SelectQueryBuilder } from 'kysely';
import type { Keyset } from '../store.js';
import type { Reader } from './dialect.js';
import { afterCondition, keysetOf, orderTerms, type Sort } from './keyset.js';

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
 * Every row of `query` in keyset batches read by `reader` (a connection of its own): each batch is
 * one short statement, and the event loop runs between batches, so a long export neither waits for
 * writers nor holds up other requests.
 */
export async function* streamPages<DB, TB extends keyof DB, O, T>(
  reader: Reader,
  query: SelectQueryBuilder<DB, TB, O>,
  sort: Sort,
  toItem: (row: O) => T,
): AsyncGenerator<T[]> {
  let after: Keyset | null = null;
  for (;;) {
    const rows = (await reader(page(query, sort, after, STREAM_BATCH).compile())) as O[];
    if (rows.length > 0) yield rows.map(toItem);
    const last = rows.at(-1);
    if (rows.length < STREAM_BATCH || last === undefined) return;
    after = keysetOf(sort, last as Record<string, unknown>);
    await yieldToEventLoop();
  }
}
