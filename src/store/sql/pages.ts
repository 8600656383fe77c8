import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type Compilable, type SelectQueryBuilder, type SqlBool, sql } from 'kysely';
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
      batch.next === null
        ? null
        : { value: batch.next[0] as Keyset['value'], key: batch.next[1] as Keyset['key'] },
  };
}

/**
 * Batches of an export read ahead of the one being written, at most: enough to keep the reader's
 * connections busy (SQLite: two read workers, each reading one while encoding another).
 */
const CSV_READ_AHEAD = 4;

/** A range batch spans at most this many times `reader.rows` keys (and so holds at most as many rows). */
const CSV_RANGE_WIDEST = 64;

/**
 * A batch of an export being read: its records, and the batch read after it (undefined: none
 * follows), asked for once it is known (a keyset batch: once this one's end is read, before its
 * records are encoded; a range batch: at once).
 */
interface CsvReading {
  batch: Promise<CsvBatch>;
  next: Promise<CsvReading | undefined>;
}

const ignore = () => undefined;

const integerKey = (value: unknown): number | undefined => {
  const key = typeof value === 'string' ? Number(value) : value;
  return typeof key === 'number' && Number.isSafeInteger(key) ? key : undefined;
};

/**
 * Every row of `query` (its columns in table `alias`) as CSV records of `request.fields`, each
 * batch encoded by `reader` where it is read: only the columns written are selected, as arrays.
 * Batches are read up to CSV_READ_AHEAD ahead of the one written (the consumer pulls): memory holds
 * a few batches however long the export.
 *
 * In the order of a sort field, each batch continues after the last row of the one before (keyset,
 * as streamPages), so it is asked for once that one has been read. In the order of an integer key
 * (jobs by id) where the reader reads in parallel (`reader.ranges`), the batches after the first
 * are ranges of keys known in advance, up to the last key there was when the export began (read
 * beside the first batch): the reader's connections read and encode several at once instead of one
 * after another (SQLite's two workers, 1,000,000 jobs: 472–505k rows/s, 0.50–0.56 × `sqlite3 -csv`,
 * one after another; 538–577k, 0.57–0.61 ×, in ranges). A range is `reader.rows` keys wide where
 * keys are dense and wider where they are sparse, up to CSV_RANGE_WIDEST times. Rows added after
 * the last key are read after the ranges in keyset batches, as before.
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
  const asc = sort.direction === 'asc';
  let ahead = 0;
  let stopped = false;
  let onRoom: (() => void) | undefined;
  const room = () =>
    ahead < CSV_READ_AHEAD || stopped
      ? Promise.resolve()
      : new Promise<void>((resolve) => (onRoom = resolve));
  /** Reads `batchQuery`'s batch; `following` answers the batch after it, from where this one ends. */
  const read = (
    batchQuery: Compilable,
    following: (ends: Promise<CsvPosition>) => Promise<CsvReading | undefined>,
  ): CsvReading => {
    ahead++;
    let onRead: (position: CsvPosition) => void = ignore;
    const readOnly = new Promise<CsvPosition>((resolve) => {
      onRead = resolve;
    });
    const batch = reader.read(batchQuery.compile(), plan, onRead);
    // A reader that never calls onRead: the batch tells where it ends.
    const ends = Promise.race([readOnly, batch]);
    const next = following(ends);
    // Whoever stops waiting for a batch (a client that left, an earlier batch that failed) leaves
    // its failure unread; the loop below still sees every failure it waits for.
    for (const promise of [ends, batch, next]) promise.catch(ignore);
    return { batch, next };
  };
  const afterRoom = async (reading: () => CsvReading): Promise<CsvReading | undefined> => {
    await room();
    return stopped ? undefined : reading();
  };
  const keysetAfter = (after: Keyset | null): CsvReading =>
    read(page(selected, sort, after, reader.rows), async (ends) => {
      const { rows, last } = await ends;
      if (rows < reader.rows || last === null) return undefined;
      return afterRoom(() =>
        keysetAfter({ value: last[0] as Keyset['value'], key: last[1] as Keyset['key'] }),
      );
    });
  // Rows per key of the range read last (1: as dense as keys go), which sizes the next.
  let density = 1;
  const rangeAfter = (from: number, end: number): CsvReading => {
    const width = Math.ceil(reader.rows * Math.min(CSV_RANGE_WIDEST, 1 / density));
    const through = asc ? Math.min(from + width, end) : Math.max(from - width, end);
    const range = selected.where(sql<SqlBool>`${sort.key} ${sql.raw(asc ? '<=' : '>=')} ${through}`);
    const reading = read(page(range, sort, { value: from, key: from }, width), () =>
      afterRoom(() => (through === end ? keysetAfter({ value: end, key: end }) : rangeAfter(through, end))),
    );
    reading.batch.then(({ rows }) => (density = Math.max(rows, 1) / width), ignore);
    return reading;
  };
  let current: CsvReading | undefined;
  const keyOrder =
    reader.ranges &&
    sort.column === sort.keyColumn &&
    [...fields.values()].some((field) => field.column === sort.keyColumn && field.integer);
  if (keyOrder) {
    // The last key in the order of the export, read beside its first batch: an export of one
    // batch waits for one read, not two in turn (the load mix's exports of 1,000 jobs, bench/load.ts).
    const reversed: Sort = { ...sort, direction: asc ? 'desc' : 'asc' };
    const final = reader.read(page(selected, reversed, null, 1).compile(), plan);
    final.catch(ignore);
    current = read(page(selected, sort, null, reader.rows), async (ends) => {
      const { rows, last } = await ends;
      if (rows < reader.rows || last === null) return undefined;
      const from = integerKey(last[1]);
      const end = integerKey((await final).last?.[1]);
      // The first batch ends on the last key: the export ends there.
      if (from !== undefined && from === end) return undefined;
      const ranges = from !== undefined && end !== undefined && (asc ? from < end : from > end);
      return afterRoom(() =>
        ranges
          ? rangeAfter(from, end)
          : keysetAfter({ value: last[0] as Keyset['value'], key: last[1] as Keyset['key'] }),
      );
    });
  } else {
    current = keysetAfter(null);
  }
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
