import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { type CsvBatch, type CsvCell, type CsvPlan, csvBatch, isoTime } from '../../model/csv.js';
import { badRequest } from '../../model/error.js';
import type { CsvReader } from '../sql/dialect.js';
import { readArrays } from './database.js';

/**
 * A cell as an export's COPY selects `column`: valued by the functions of migration 012 so that
 * COPY writes it as src/model/csv.ts does; a timestamp as its epoch milliseconds, which the reader
 * writes.
 */
function cellValue(kind: CsvCell, column: string): string {
  switch (kind) {
    case 'value':
      return `fleetjobs_csv(${column})`;
    case 'json':
      return `fleetjobs_csv_json(${column})`;
    case 'timestamp':
      return column;
  }
}

/** The text pg sends for a bound parameter (`{1,2}` for an array), or null. */
const parameterText = (pg as unknown as { utils: { prepareValue(value: unknown): string | Buffer | null } })
  .utils.prepareValue;

/** What in SQL text may hold a `$`: quoted text (also E'…') and names; or a parameter, `$n`. */
const SQL_TOKENS = /[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*'|"(?:[^"]|"")*"|\$(\d+)/g;

/**
 * `query`'s SQL with its parameters written in, since COPY takes none: each as a quoted literal of
 * the text pg would have bound, which PostgreSQL types from its context as it types a parameter.
 */
function withLiterals(query: CompiledQuery): string {
  return query.sql.replace(SQL_TOKENS, (token, number: string | undefined) => {
    if (number === undefined) return token;
    const index = Number(number) - 1;
    if (index >= query.parameters.length) throw new Error(`No parameter ${token} in ${query.sql}`);
    const text = parameterText(query.parameters[index]);
    if (text === null) return 'NULL';
    if (typeof text !== 'string') throw new Error('A COPY statement cannot hold binary parameters');
    // A bound parameter holding NUL is refused by the server; in a statement's text it would end it.
    if (text.includes('\0')) throw badRequest('Text holding NUL (U+0000) cannot be stored');
    return pg.escapeLiteral(text);
  });
}

/** The fields an export's COPY writes before the cells, which the reader takes off. */
interface Prefix {
  /** Whether the first says if every cell is written exactly (not when all are timestamps). */
  checked: boolean;
  /** Whether the sort value is the key (written once). */
  sortedByKey: boolean;
}

const prefixOf = (plan: CsvPlan): Prefix => ({
  checked: plan.kinds.some((kind) => kind !== 'timestamp'),
  sortedByKey: plan.keyset[0] === plan.keyset[1],
});

/**
 * The batch `query` reads as `COPY … TO STDOUT (FORMAT csv)`: PostgreSQL writes, quotes and escapes
 * the cells itself (as `psql \copy` has them written), valued by the functions of migration 012 so
 * that the text is the model's. Each record starts with the fields of `prefix`: whether every cell is written
 * exactly, then the sort value and the key, where the next batch continues.
 */
function copyStatement(query: CompiledQuery, plan: CsvPlan, prefix: Prefix): string {
  const width = Math.max(...plan.columns, ...plan.keyset) + 1;
  const names = Array.from({ length: width }, (_, index) => `c${index}`).join(', ');
  const kinds = plan.kinds as readonly CsvCell[];
  const cells = plan.columns.map((column, index) => cellValue(kinds[index] as CsvCell, `s.c${column}`));
  const checks = plan.columns.flatMap((column, index) =>
    kinds[index] === 'json'
      ? [`fleetjobs_csv_json_exact(s.c${column})`]
      : kinds[index] === 'value'
        ? [`fleetjobs_csv_exact(s.c${column})`]
        : [],
  );
  const [sortColumn, keyColumn] = plan.keyset;
  const fields = [
    ...(prefix.checked ? [checks.join(' AND ')] : []),
    `s.c${sortColumn}`,
    ...(prefix.sortedByKey ? [] : [`s.c${keyColumn}`]),
    ...cells,
  ];
  return `COPY (SELECT ${fields.join(', ')} FROM (${withLiterals(query)}) AS s(${names})) TO STDOUT (FORMAT csv)`;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const LF = 0x0a;
const CR = 0x0d;
const TRUE = 0x74; // 't'
const MINUS = 0x2d;
const ZERO = 0x30;
/** The longest timestamp isoTime writes: `+275760-09-13T00:00:00.000Z`. */
const TIMESTAMP_BYTES = 27;

/** Where the CSV field starting at `start` of `bytes` ends (its comma or line feed). */
function fieldEnd(bytes: Buffer, start: number): number {
  let index = start;
  if (bytes[index] === QUOTE) {
    // Quotes inside a quoted field come doubled.
    do index = bytes.indexOf(QUOTE, index + 1) + 1;
    while (bytes[index] === QUOTE);
    return index;
  }
  while (bytes[index] !== COMMA && bytes[index] !== LF) index++;
  return index;
}

/** The value of the CSV field `bytes[start, end)`: NULL when COPY wrote nothing. */
function fieldValue(bytes: Buffer, start: number, end: number): string | null {
  if (start === end) return null;
  if (bytes[start] !== QUOTE) return bytes.toString('utf8', start, end);
  return bytes.toString('utf8', start + 1, end - 1).replaceAll('""', '"');
}

/** The integer `bytes[start, end)` as PostgreSQL writes it (exact up to 2^53, as the store's values). */
function integerValue(bytes: Buffer, start: number, end: number): number {
  const negative = bytes[start] === MINUS;
  let value = 0;
  for (let index = negative ? start + 1 : start; index < end; index++) {
    value = value * 10 + (bytes[index] as number) - ZERO;
  }
  return negative ? -value : value;
}

/** The connection, as far as a COPY TO STDOUT needs it. */
interface CopyConnection {
  query(text: string): void;
}

/**
 * One batch's `COPY … TO STDOUT` as a pg Submittable (pg has no COPY of its own; pg-copy-streams
 * is not a dependency). PostgreSQL sends each record as a message of its own: each is copied as
 * it comes into one buffer, as the export writes it: without copyStatement's first fields,
 * its timestamps (epoch milliseconds) written by the model's isoTime, ended by CRLF rather than LF.
 */
class CopyBatch {
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: Error) => void;
  #bytes: Buffer;
  #length = 0;
  rows = 0;
  /** Whether the migration's functions wrote every cell exactly. */
  exact = true;
  /** The sort value and key of the last record, as COPY wrote them (with the comma between, unless one). */
  #last = Buffer.allocUnsafe(256);
  #lastLength = 0;
  #lastSortLength = 0;
  /** What failed while a record was written (a timestamp Date cannot write): the batch fails with it. */
  #failure: Error | undefined;

  constructor(
    private readonly text: string,
    private readonly prefix: Prefix,
    /** The indexes of the timestamp cells, ascending. */
    private readonly timestamps: readonly number[],
    capacity: number,
  ) {
    this.#bytes = Buffer.allocUnsafe(capacity);
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyData({ chunk }: { chunk: Buffer }): void {
    if (this.#failure !== undefined) return;
    try {
      this.#append(chunk);
    } catch (error) {
      this.#failure = error instanceof Error ? error : new Error(String(error));
    }
  }

  #append(chunk: Buffer): void {
    const { checked, sortedByKey } = this.prefix;
    if (checked && chunk[0] !== TRUE) this.exact = false;
    const sortStart = checked ? 2 : 0;
    const sortEnd = fieldEnd(chunk, sortStart);
    const keyEnd = sortedByKey ? sortEnd : fieldEnd(chunk, sortEnd + 1);
    const room = chunk.length + this.timestamps.length * TIMESTAMP_BYTES + 1;
    if (this.#length + room > this.#bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(2 * this.#bytes.length, this.#length + room));
      this.#bytes.copy(grown, 0, 0, this.#length);
      this.#bytes = grown;
    }
    let copied = keyEnd + 1;
    let start = copied;
    let cell = 0;
    for (const timestamp of this.timestamps) {
      for (; cell < timestamp; cell++) start = fieldEnd(chunk, start) + 1;
      const end = fieldEnd(chunk, start);
      this.#length += chunk.copy(this.#bytes, this.#length, copied, start);
      if (end > start) {
        const text = isoTime(integerValue(chunk, start, end)) as string;
        this.#length += this.#bytes.write(text, this.#length, 'latin1');
      }
      copied = end;
    }
    this.#length += chunk.copy(this.#bytes, this.#length, copied, chunk.length - 1);
    this.#bytes[this.#length++] = CR;
    this.#bytes[this.#length++] = LF;
    if (keyEnd - sortStart > this.#last.length) this.#last = Buffer.allocUnsafe(2 * (keyEnd - sortStart));
    this.#lastLength = chunk.copy(this.#last, 0, sortStart, keyEnd);
    this.#lastSortLength = sortEnd - sortStart;
    this.rows++;
  }

  /** The records, as the export writes them. */
  get records(): Buffer {
    return this.#bytes.subarray(0, this.#length);
  }

  /** The sort value and key of the last record (null: no records). */
  get last(): [string | null, string | null] | null {
    if (this.rows === 0) return null;
    const sort = fieldValue(this.#last, 0, this.#lastSortLength);
    return [
      sort,
      this.prefix.sortedByKey ? sort : fieldValue(this.#last, this.#lastSortLength + 1, this.#lastLength),
    ];
  }

  handleError(error: Error): void {
    this.#reject(error);
  }

  handleReadyForQuery(): void {
    if (this.#failure === undefined) this.#resolve();
    else this.#reject(this.#failure);
  }

  handleCommandComplete(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
}

/**
 * Rows per batch of a CSV export by COPY (about 1 MB of CSV): each statement is planned, and the
 * event loop and the server wait for each other between two (1,000,000 jobs read without HTTP on a
 * loaded machine: 1,000-row batches 72k rows/s, 10,000 95k, 50,000 98k).
 */
export const COPY_BATCH = 10_000;

/**
 * Reads a CSV export's batch on `pool` written by PostgreSQL's COPY; a batch holding a value the
 * migration's functions cannot write exactly (a fraction, a JSON string with escapes) is read again
 * as arrays and encoded here, by the same function as every other engine's.
 */
export function postgresCsvReader(pool: pg.Pool): CsvReader['read'] {
  // A batch's buffer starts as large as the last one came to.
  let capacity = 64 * 1024;
  return async (query, plan): Promise<CsvBatch> => {
    const timestamps = plan.kinds.flatMap((kind, index) => (kind === 'timestamp' ? [index] : []));
    const prefix = prefixOf(plan);
    const batch = new CopyBatch(copyStatement(query, plan, prefix), prefix, timestamps, capacity);
    const client = await pool.connect();
    try {
      client.query(batch);
      await batch.done;
      client.release();
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
    if (batch.exact) {
      capacity = Math.max(capacity, batch.records.length);
      return { records: batch.records, rows: batch.rows, last: batch.last };
    }
    return csvBatch(await readArrays(pool, query), plan);
  };
}
