import type { CompiledQuery, Kysely, KyselyConfig, RawBuilder, SqlBool } from 'kysely';
import type { CsvBatch, CsvPlan, JsonBatch, JsonPlan } from '../../model/csv.js';
import type { Dialect } from '../../query/sql.js';
import type { OnQuery } from '../store.js';

/**
 * Everything the shared SQL of src/store/sql/ writes differently on each engine, and nothing else.
 * src/store/sqlite/dialect.ts and src/store/postgres/dialect.ts implement it.
 */
export interface SqlDialect {
  /** The engine, as the query compiler names it. */
  readonly id: Dialect;
  /** `expression IN (ids)`: one bound parameter however many ids. */
  inIntegers(expression: RawBuilder<unknown>, ids: readonly number[]): RawBuilder<SqlBool>;
  inTexts(expression: RawBuilder<unknown>, values: readonly string[]): RawBuilder<SqlBool>;
  /** A FROM item: one row per value, in column `value` of `alias`. */
  textTable(values: readonly string[], alias: string): RawBuilder<unknown>;
  /** A FROM item: one row per string of the JSON array held in the text `expression`, column `value` of `alias`. */
  jsonArrayElements(expression: RawBuilder<unknown>, alias: string): RawBuilder<unknown>;
  /**
   * A SELECT of `columns` (typed as the columns of `table`) from `json`, a JSON array of objects:
   * an INSERT … SELECT of many rows in one parameter.
   */
  jsonRecords(table: string, columns: readonly string[], json: string): RawBuilder<unknown>;
  /** Whether a statement's WITH may write (an INSERT … RETURNING whose rows the statement reads). */
  readonly writesInWith: boolean;
  /**
   * Ends a SELECT of rows (of table `alias`) this transaction will change: rows another transaction is changing are
   * skipped, not waited for (several nodes on one PostgreSQL); nothing where writers are serial.
   */
  claimLock(alias: string): RawBuilder<unknown>;
  /** Ends a SELECT that locks its rows (of table `alias`) until the transaction ends, waiting for them. */
  lockRows(alias: string): RawBuilder<unknown>;
  /**
   * How a job query (filters.ts) finds the jobs of a middling number of matching devices (more than
   * SEMI_JOIN_MAX_DEVICES): by probing each job's targets against the set of their keys, or (null)
   * by joining each target's device.
   */
  readonly deviceKeySet: DeviceKeySet | null;
  /**
   * Ends the subquery of a probe (`EXISTS (SELECT 1 FROM job_targets t … WHERE t.job_id = j.id …)`)
   * so that it runs for each job the page reads, as written, never as a join driven from the
   * devices instead.
   */
  readonly probeEachRow: RawBuilder<unknown>;
  /** Whether the error aborted a transaction that may simply run again (a deadlock, say). */
  isRetryable(error: unknown): boolean;
  /** A store error the request caused, as an AppError (4xx); any other error as it is. */
  mapError(error: unknown): unknown;
}

/**
 * The set of the matching devices' keys, gathered once by the engine while it runs the page, that
 * a job query probes each job's targets against.
 */
export interface DeviceKeySet {
  /**
   * For fewer matching devices than this: about where gathering them costs what they save, when
   * the engine scans the devices to find them.
   */
  readonly max: number;
  /** The same bound for devices found through indexes alone (a group, a tag), which cost less. */
  readonly indexedMax: number;
  /**
   * How many rows the planner expects `select` to return, and whether it finds them through
   * indexes alone (planning only, nothing read).
   */
  // biome-ignore lint/suspicious/noExplicitAny: any store's database
  estimate(db: Kysely<any>, select: RawBuilder<unknown>): Promise<{ rows: number; indexed: boolean }>;
  /** "The device of target `t` is one of those `devices` (a SELECT of their keys) selects." */
  holds(devices: RawBuilder<unknown>): RawBuilder<SqlBool>;
}

/** Reads every row of a compiled SELECT, on a connection the engine chose for long reads. */
export type Reader = (query: CompiledQuery) => Promise<unknown[]>;

/** Where a batch of an export ends: its rows, and the keyset values of the last (null: none). */
export type CsvPosition = Pick<CsvBatch, 'rows' | 'last'>;

/**
 * Reads a CSV export's batches, each a compiled SELECT of at most `rows` rows: every row as `plan`
 * says, answered as CSV records, on the connection of long reads, encoded where they are read.
 * A reader that encodes after reading calls `onRead` in between: the next batch, which continues
 * after this one's last row, can be read (on another connection) while this one is encoded.
 */
export interface CsvReader {
  readonly rows: number;
  /**
   * Whether an export in integer key order reads key ranges known in advance, several at once
   * (csvPages): where the reads themselves are the work and run in parallel (SQLite's read
   * workers). PostgreSQL's COPY batches are bound by the event loop taking their records apart,
   * and read that way they measured slower (0.50–0.65 × psql against 0.58–0.65 × one after another).
   */
  readonly ranges: boolean;
  read(query: CompiledQuery, plan: CsvPlan, onRead?: (position: CsvPosition) => void): Promise<CsvBatch>;
}

/** Reads the rows of a page's compiled SELECT and answers them as JSON items, as `plan` says. */
export type JsonReader = (query: CompiledQuery, plan: JsonPlan) => Promise<JsonBatch>;

/** Kysely's options that report each statement's time to `onQuery` (none without it). */
export const queryLog = (onQuery: OnQuery | undefined): Pick<KyselyConfig, 'log'> =>
  onQuery === undefined ? {} : { log: (event) => onQuery(event.queryDurationMillis, event.query.sql) };

/**
 * `reader` with each statement's time reported to `onQuery`: exports and JSON pages read around
 * kysely (arrays, not row objects), so its log, which times every other statement, never sees them.
 */
export function timedCsvReader<P, R, A extends unknown[]>(
  reader: (query: CompiledQuery, plan: P, ...rest: A) => Promise<R>,
  onQuery: OnQuery | undefined,
): (query: CompiledQuery, plan: P, ...rest: A) => Promise<R> {
  if (onQuery === undefined) return reader;
  return async (query, plan, ...rest) => {
    const started = performance.now();
    try {
      return await reader(query, plan, ...rest);
    } finally {
      onQuery(performance.now() - started, query.sql);
    }
  };
}
