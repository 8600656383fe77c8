import { type SelectQueryBuilder, sql } from 'kysely';
import type { CsvBatch, CsvCell, CsvPlan } from '../../model/csv.js';
import type { CsvRecords, CsvRequest, JsonPage, JsonPageRequest, Keyset } from '../store.js';
import type { CsvPosition, CsvReader, JsonReader, Reader } from './dialect.js';
import type { StoreFields } from './fields.js';
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

/** Rows per batch of a CSV export encoded by the reader (SQLite's read worker): about 100 KiB of CSV. */
export const CSV_BATCH = 1000;

/**
 * What a CSV export or a JSON page of `request.fields` selects (each field's column once, and the
 * sort and key columns) and how it writes the rows: `fields` maps a field to its column where the
 * names differ (a device's `group`), `json` names the fields whose column holds JSON text.
 */
function encodingPlan(
  fields: StoreFields,
  json: ReadonlySet<string>,
  request: Pick<CsvRequest, 'fields' | 'timestamps'>,
  sort: Sort,
): { columns: string[]; plan: CsvPlan } {
  const columns: string[] = [];
  const indexOf = (column: string): number => {
    const index = columns.indexOf(column);
    return index < 0 ? columns.push(column) - 1 : index;
  };
  const plan: CsvPlan = {
    columns: request.fields.map((field) => indexOf(fields.get(field)?.column ?? field)),
    kinds: request.fields.map(
      (field): CsvCell => (request.timestamps.has(field) ? 'timestamp' : json.has(field) ? 'json' : 'value'),
    ),
    keyset: [indexOf(sort.column), indexOf(sort.keyColumn)],
  };
  return { columns, plan };
}

/** `query` selecting only `columns` of table `alias`. */
const selectingOnly = <DB, TB extends keyof DB, O>(
  query: SelectQueryBuilder<DB, TB, O>,
  alias: string,
  columns: readonly string[],
) => query.clearSelect().select(columns.map((column) => sql.ref(`${alias}.${column}`).as(column)));

/**
 * One page of `query` (its columns in table `alias`) as JSON items of `request.fields`, encoded by
 * `reader` where it is read (SQLite: in its read worker, so the event loop only writes the text),
 * and where the next page starts: one row more than the page is read to know whether one follows.
 */
export async function jsonPage<DB, TB extends keyof DB, O>(
  reader: JsonReader,
  query: SelectQueryBuilder<DB, TB, O>,
  alias: string,
  sort: Sort,
  request: JsonPageRequest,
  fields: StoreFields,
  json: ReadonlySet<string> = new Set(),
): Promise<JsonPage> {
  const { columns, plan } = encodingPlan(fields, json, request, sort);
  const paged = page(selectingOnly(query, alias, columns), sort, request.after, request.limit + 1);
  const batch = await reader(paged.compile(), { ...plan, fields: request.fields, limit: request.limit });
  return {
    json: batch.json,
    count: batch.count,
    next:
      batch.more && batch.last !== null
        ? { value: batch.last[0] as Keyset['value'], key: batch.last[1] as Keyset['key'] }
        : null,
  };
}

/**
 * Batches of an export read ahead of the one being written, at most: enough to keep the reader's
 * connections busy (SQLite: two read workers, each reading one while encoding another).
 */
const CSV_READ_AHEAD = 4;

/**
 * A batch of an export being read: its records, and the batch read after it (undefined: none
 * follows), asked for once this one's end is known (before its records, where the reader encodes
 * after reading).
 */
interface CsvReading {
  batch: Promise<CsvBatch>;
  next: Promise<CsvReading | undefined>;
}

const ignore = () => undefined;

/**
 * Every row of `query` (its columns in table `alias`) as CSV records of `request.fields`, in
 * keyset batches as streamPages reads them, each encoded by `reader` where it is read: only the
 * columns written are selected, as arrays. Each batch is asked for once the one before has been
 * read, up to CSV_READ_AHEAD batches ahead of the one written (the consumer pulls): memory holds a
 * few batches however long the export.
 */
export async function* csvPages<DB, TB extends keyof DB, O>(
  reader: CsvReader,
  query: SelectQueryBuilder<DB, TB, O>,
  alias: string,
  sort: Sort,
  request: CsvRequest,
  fields: StoreFields,
  json: ReadonlySet<string> = new Set(),
): CsvRecords {
  const { columns, plan } = encodingPlan(fields, json, request, sort);
  const selected = selectingOnly(query, alias, columns);
  let ahead = 0;
  let stopped = false;
  let onRoom: (() => void) | undefined;
  const room = () =>
    ahead < CSV_READ_AHEAD || stopped
      ? Promise.resolve()
      : new Promise<void>((resolve) => (onRoom = resolve));
  const read = (after: Keyset | null): CsvReading => {
    ahead++;
    let onRead: (position: CsvPosition) => void = ignore;
    const readOnly = new Promise<CsvPosition>((resolve) => {
      onRead = resolve;
    });
    const batch = reader.read(page(selected, sort, after, reader.rows).compile(), plan, onRead);
    // A reader that never calls onRead: the batch tells where it ends.
    const position = Promise.race([readOnly, batch]);
    const next = position.then(async ({ rows, last }) => {
      if (rows < reader.rows || last === null) return undefined;
      await room();
      return stopped ? undefined : read({ value: last[0] as Keyset['value'], key: last[1] as Keyset['key'] });
    });
    // Whoever stops waiting for a batch (a client that left, an earlier batch that failed) leaves
    // its failure unread; the loop below still sees every failure it waits for.
    for (const promise of [position, batch, next]) promise.catch(ignore);
    return { batch, next };
  };
  let current: CsvReading | undefined = read(null);
  try {
    while (current !== undefined) {
      const batch: CsvBatch = await current.batch;
      ahead--;
      onRoom?.();
      onRoom = undefined;
      if (batch.rows > 0) yield batch.records;
      current = await current.next;
    }
  } finally {
    stopped = true;
    onRoom?.();
  }
}
