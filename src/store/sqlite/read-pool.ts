import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type Kysely,
  type QueryResult,
  SqliteAdapter,
  SqliteIntrospector,
  SqliteQueryCompiler,
} from 'kysely';
import { type CsvBatch, type CsvPlan, cellEncoding, type JsonBatch, type JsonPlan } from '../../model/csv.js';
import type { CsvPosition } from '../sql/dialect.js';
import { ReadQueue, readKey } from '../sql/read-queue.js';
import { jsonPageStatement } from './json-page.js';

/**
 * Read-only connections to the store's file, each in a worker thread of its own. better-sqlite3 runs
 * a statement synchronously on the thread that calls it: pages and exports read here run on the
 * other cores and never hold up the event loop (requests, MQTT, the writer). Under WAL each
 * statement sees every transaction committed before it began, so a read that follows an answered
 * write sees that write.
 *
 * The rows come back as JSON text when every value is a string, a number or NULL (so always, for
 * the store's tables): the event loop parses 1,000 rows of a page from text in about half the time
 * it takes to receive them as cloned objects (the cost that made a pool sending objects no faster
 * than reading on the event loop). The worker reads them as arrays (better-sqlite3's `raw` mode)
 * and sends the column names with them: building an object per row took the worker about 9 ms of
 * a 1,000-job page's 10 ms, arrays half that, and their text is a third as long to send and parse.
 *
 * A CSV export's batches are encoded in the worker that reads them, by the shared cell encoding
 * (src/model/csv.ts, its source text evaluated here), to UTF-8 bytes whose memory moves to the
 * event loop, which only writes them (receiving each batch as a string and encoding it there cost
 * the event loop 1.25 s of CPU per 1M rows, the bytes 0.45 s). The worker says where a batch ends
 * as soon as it is read, before encoding it: the other worker reads the next batch meanwhile
 * (src/store/sql/pages.ts, csvPages). A JSON page (the jobs page, most of the load of
 * issue 9's mix) is written by SQLite itself where it writes every cell as the model does
 * (json-page.ts), else encoded here as an export's batches are: either way as UTF-8 bytes whose
 * memory moves to the event loop (not copied: receiving a 350 kB string cost it ~2 ms).
 *
 * The pool gives each worker two statements at a time; the others wait here, in the order they
 * were asked for, and a read identical to one waiting joins it (ReadQueue).
 */

/**
 * The nice value of the read workers' threads (where the system has one per thread: Linux): when
 * the cores are all busy, the event loop (requests, MQTT, the dispatcher, the writer) runs first
 * and the reads take what is left. Under bench/load.ts's 200 clients, at the same 268–279 req/s:
 * event-loop delay p99 20–22 ms (max 40–99) against 43–54 (max 75–109), creates p50 / p99 3 ms /
 * 0.6 s against 9 ms / 1.2–2.2 s, pages' p99 2.0 s against 2.2–3.1 s.
 */
const READ_WORKER_NICE = 10;

/**
 * Runs in each worker: one read-only connection, statements prepared once, rows (or CSV) sent
 * back. `__name`: tsx (esbuild's keepNames) wraps the encoding's inner functions in it.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const __name = (target) => target;
const { csvBatch, jsonBatch } = (${cellEncoding.toString()})();
const Database = require(workerData.driver);
try {
  // Linux schedules each thread on its own: this one (its id from /proc) behind the event loop.
  const thread = Number(require('node:fs').readlinkSync('/proc/thread-self').split('/').pop());
  require('node:os').setPriority(thread, workerData.nice);
} catch {}
const connection = new Database(workerData.path, { readonly: true, fileMustExist: true });
for (const pragma of workerData.pragmas) connection.pragma(pragma);
const prepared = new Map();
const plain = (rows) =>
  rows.every((row) =>
    row.every((value) => value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))),
  );
const prepare = (sql) => {
  let entry = prepared.get(sql);
  if (entry === undefined) {
    if (prepared.size >= 500) prepared.clear();
    const statement = connection.prepare(sql).raw(true);
    entry = { statement, columns: statement.columns().map((column) => column.name) };
    prepared.set(sql, entry);
  }
  return entry;
};
let strictTables;
/**
 * Whether SQLite writes every cell of a page of the SELECT sql as jsonBatch would: each one a column of a
 * STRICT table declared INTEGER or TEXT (no fraction, no blob can be there).
 */
const typedCells = (sql, page) => {
  strictTables ??= new Set(connection.pragma('table_list').filter((table) => table.strict === 1).map((table) => table.name));
  const declared = connection.prepare(sql).columns();
  return page.columns.every((index, cell) => {
    const column = declared[index];
    const type = column?.type?.toUpperCase();
    return strictTables.has(column?.table) && (type === 'INTEGER' || (type === 'TEXT' && page.kinds[cell] === 'value'));
  });
};
parentPort.on('message', ({ id, sql, parameters, csv, page, pageSql }) => {
  try {
    if (pageSql !== undefined) {
      const entry = prepare(pageSql);
      entry.typed ??= typedCells(sql, page);
      const [json, rows, sort, key, exact] = entry.typed ? entry.statement.get(...parameters) : [];
      if (exact === 1) {
        const batch = { json, count: Math.min(rows, page.limit), next: rows > page.limit ? [sort, key] : null };
        parentPort.postMessage({ id, page: batch }, [json.buffer]);
        return;
      }
    }
    const { statement, columns } = prepare(sql);
    const rows = statement.all(...parameters);
    if (csv !== undefined) {
      // Where the batch ends, before encoding it: the next batch can be read by another worker meanwhile.
      const final = rows[rows.length - 1];
      const last = final === undefined ? null : [final[csv.keyset[0]], final[csv.keyset[1]]];
      parentPort.postMessage({ id, read: { rows: rows.length, last } });
      const batch = csvBatch(rows, csv);
      const records = Buffer.allocUnsafeSlow(Buffer.byteLength(batch.records));
      records.write(batch.records);
      parentPort.postMessage({ id, csv: { ...batch, records } }, [records.buffer]);
    } else if (page !== undefined) {
      const batch = jsonBatch(rows, page);
      parentPort.postMessage({ id, page: batch }, [batch.json.buffer]);
    } else {
      parentPort.postMessage(plain(rows) ? { id, columns, json: JSON.stringify(rows) } : { id, columns, rows });
    }
  } catch (error) {
    parentPort.postMessage({ id, error: { message: error.message, code: error.code } });
  }
});
`;

interface Reply {
  id: number;
  /** The names of the values of each row, in order. */
  columns?: string[];
  /** The rows (arrays of values) as JSON text, or (when a value is not plain JSON) `rows`, or CSV. */
  json?: string;
  rows?: unknown[][];
  csv?: CsvBatch;
  /** Sent before `csv`, once the batch is read. */
  read?: CsvPosition;
  page?: JsonBatch;
  error?: { message: string; code?: string };
}

/** Rows as objects, from arrays of values in the order of `columns` (a repeated name: the last wins, as better-sqlite3 does). */
function rowObjects(columns: readonly string[], rows: readonly unknown[][]): Record<string, unknown>[] {
  return rows.map((values) => {
    const row: Record<string, unknown> = {};
    for (let index = 0; index < columns.length; index++) row[columns[index] as string] = values[index];
    return row;
  });
}

interface Waiting {
  resolve(reply: Reply): void;
  reject(error: Error): void;
  onRead?: ((position: CsvPosition) => void) | undefined;
}

interface Message {
  sql: string;
  parameters: readonly unknown[];
  csv?: CsvPlan;
  page?: JsonPlan;
  pageSql?: string | undefined;
}

interface PoolWorker {
  worker: Worker;
  reading: Map<number, Waiting>;
}

/**
 * Statements a worker is given at once: one read while the next waits in its port, so it never
 * waits for the event loop between two. The others wait in the pool's queue, where identical ones
 * join (ReadQueue).
 */
const GIVEN_PER_WORKER = 2;

export class SqliteReadPool {
  readonly #path: string;
  readonly #pragmas: readonly string[];
  readonly #size: number;
  readonly #queue: ReadQueue<{ message: Message; onRead?: (position: CsvPosition) => void }, Reply>;
  #workers: PoolWorker[] = [];
  #nextId = 0;
  #closed = false;

  /** Workers start on the first read (a CLI command that only writes starts none). */
  constructor(path: string, pragmas: readonly string[], size = availableParallelism()) {
    this.#path = path;
    this.#pragmas = pragmas;
    this.#size = Math.max(1, size);
    this.#queue = new ReadQueue(this.#size * GIVEN_PER_WORKER, ({ message, onRead }) =>
      this.#give(message, onRead),
    );
  }

  /** Every row of `query` (read once for the identical reads waiting together). */
  async read(query: CompiledQuery): Promise<unknown[]> {
    const message = { sql: query.sql, parameters: query.parameters };
    const reply = await this.#queue.ask({ message }, readKey(message.sql, message.parameters, null));
    const rows = reply.json === undefined ? (reply.rows ?? []) : (JSON.parse(reply.json) as unknown[][]);
    return rowObjects(reply.columns ?? [], rows);
  }

  /** Every row of `query` as CSV records, encoded by the worker that reads them (`onRead`: read, not yet encoded). */
  async readCsv(
    query: CompiledQuery,
    plan: CsvPlan,
    onRead?: (position: CsvPosition) => void,
  ): Promise<CsvBatch> {
    // Never joined: its `onRead` is its own.
    const { csv } = await this.#queue.ask({
      message: { sql: query.sql, parameters: query.parameters, csv: plan },
      onRead,
    });
    if (csv === undefined) throw new Error('a read worker answered no CSV');
    return csv;
  }

  /**
   * The rows of `query` as a JSON page, encoded by the worker that reads them (by SQLite itself
   * where it writes the cells exactly as jsonBatch: jsonPageStatement); read once for the
   * identical pages waiting together.
   */
  async readJson(query: CompiledQuery, plan: JsonPlan): Promise<JsonBatch> {
    const message = {
      sql: query.sql,
      parameters: query.parameters,
      page: plan,
      pageSql: jsonPageStatement(query.sql, plan),
    };
    const { page } = await this.#queue.ask({ message }, readKey(message.sql, message.parameters, plan));
    if (page === undefined) throw new Error('a read worker answered no JSON page');
    return page;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#queue.close(new Error('the store is closed'));
    const workers = this.#workers;
    this.#workers = [];
    await Promise.all(workers.map(({ worker }) => worker.terminate()));
  }

  /** Reads `message` on the worker with the fewest statements, starting workers up to the pool's size. */
  #give(message: Message, onRead?: (position: CsvPosition) => void): Promise<Reply> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    if (this.#workers.length < this.#size) this.#workers.push(this.#start());
    const target = this.#workers.reduce((least, candidate) =>
      candidate.reading.size < least.reading.size ? candidate : least,
    );
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      target.reading.set(id, { resolve, reject, onRead });
      target.worker.postMessage({ id, ...message });
    });
  }

  #start(): PoolWorker {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path: this.#path,
        pragmas: this.#pragmas,
        nice: READ_WORKER_NICE,
      },
    });
    // A worker never keeps the process alive: closing the store ends them, exiting does too.
    worker.unref();
    const pooled: PoolWorker = { worker, reading: new Map() };
    worker.on('message', (reply: Reply) => {
      const waiting = pooled.reading.get(reply.id);
      if (waiting === undefined) return;
      if (reply.read !== undefined) {
        waiting.onRead?.(reply.read);
        return;
      }
      pooled.reading.delete(reply.id);
      if (reply.error !== undefined) {
        waiting.reject(Object.assign(new Error(reply.error.message), { code: reply.error.code }));
      } else {
        waiting.resolve(reply);
      }
    });
    const failAll = (error: Error) => {
      for (const waiting of pooled.reading.values()) waiting.reject(error);
      pooled.reading.clear();
      this.#workers = this.#workers.filter((candidate) => candidate !== pooled);
    };
    worker.on('error', failAll);
    worker.on('exit', () => failAll(new Error('a read worker of the store stopped')));
    return pooled;
  }
}

/** A kysely dialect whose statements run on `pool`: reads only, no transactions. */
export class SqliteReadPoolDialect implements Dialect {
  constructor(private readonly pool: SqliteReadPool) {}

  createAdapter() {
    return new SqliteAdapter();
  }

  createDriver(): Driver {
    const connection: DatabaseConnection = {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => ({
        rows: (await this.pool.read(query)) as R[],
      }),
      streamQuery: () => {
        throw new Error('the read pool does not stream: read in keyset pages');
      },
    };
    const noTransactions = async () => {
      throw new Error('the read pool only reads: transactions belong to the writer');
    };
    return {
      init: async () => {},
      acquireConnection: async () => connection,
      beginTransaction: noTransactions,
      commitTransaction: noTransactions,
      rollbackTransaction: noTransactions,
      releaseConnection: async () => {},
      destroy: () => this.pool.close(),
    };
  }

  // biome-ignore lint/suspicious/noExplicitAny: kysely's introspector takes any database
  createIntrospector(db: Kysely<any>) {
    return new SqliteIntrospector(db);
  }

  createQueryCompiler() {
    return new SqliteQueryCompiler();
  }
}
