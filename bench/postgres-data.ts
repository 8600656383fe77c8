/**
 * The generated dataset (bench/generate.ts) in PostgreSQL, for the benchmarks' `--store postgres`:
 * a database migrated by the store's own PostgreSQL migrations, then every row of the SQLite file
 * copied in by COPY … FROM STDIN (text format, streamed), identity sequences moved past the copied
 * ids, then VACUUM ANALYZE (statistics, and the visibility map index-only scans need, as
 * autovacuum keeps them in service).
 *
 *   npx tsx bench/postgres-data.ts [--database-url URL]
 *
 * `--database-url URL`: that database, loaded first when it does not hold the dataset. Without
 * it, an embedded PostgreSQL whose cluster is kept under bench/data/pg-v<version>/ (git-ignored):
 * loaded once (about two minutes), reused by later runs. Benchmarks that change the data work on a
 * copy (`copyDatabase`, CREATE DATABASE … TEMPLATE), so the loaded one stays as generated.
 */
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { openPostgresDatabase } from '../src/store/postgres/database.js';
import { startEmbeddedPostgres } from '../test/setup/embedded-postgres.js';
import { DATASET_VERSION, datasetPath, ensureDataset, JOB_COUNT } from './generate.js';

/** The database of the embedded cluster that holds the dataset once loaded (renamed at the end). */
const LOADED = `fleet_v${DATASET_VERSION}`;
const LOADING = `${LOADED}_loading`;
/** Bytes of COPY text sent per CopyData message. */
const CHUNK_BYTES = 1 << 20;

/**
 * The embedded server's settings: commits do not wait for the WAL flush (as SQLite's
 * synchronous=NORMAL), checkpoints spaced out for the bulk load; otherwise PostgreSQL's defaults.
 */
const SERVER_SETTINGS = ['synchronous_commit=off', 'max_wal_size=4GB', 'checkpoint_timeout=15min'];

export interface PostgresDataset {
  /** The database holding the dataset, as loaded. */
  url: string;
  /** A new database copied from the dataset (for benchmarks that change it): its URL. */
  copyDatabase(name: string): Promise<string>;
  /** Drops a copy made by copyDatabase. */
  dropDatabase(name: string): Promise<void>;
  stop(): Promise<void>;
}

const withDatabase = (url: string, database: string) => {
  const copy = new URL(url);
  copy.pathname = `/${database}`;
  return copy.toString();
};

async function withClient<T>(url: string, run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** pg's connection, as far as COPY FROM STDIN needs it. */
interface CopyConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
  stream: NodeJS.WritableStream & { writableNeedDrain: boolean };
}

/**
 * `COPY … FROM STDIN` of the chunks of `source`, as a pg Submittable (pg has no COPY of its own;
 * pg-copy-streams is not a dependency): sent as CopyData messages, waiting for the socket to drain.
 */
class CopyFrom extends EventEmitter {
  readonly done: Promise<void>;
  #resolve!: () => void;
  #reject!: (error: Error) => void;
  #error: Error | undefined;

  constructor(
    private readonly text: string,
    private readonly source: () => Iterable<string>,
  ) {
    super();
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  submit(connection: CopyConnection): void {
    connection.query(this.text);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    void (async () => {
      try {
        for (const chunk of this.source()) {
          connection.sendCopyFromChunk(Buffer.from(chunk));
          if (connection.stream.writableNeedDrain) {
            await new Promise((resolve) => connection.stream.once('drain', resolve));
          }
        }
        connection.endCopyFrom();
      } catch (error) {
        connection.sendCopyFail(error instanceof Error ? error.message : String(error));
      }
    })();
  }

  handleError(error: Error): void {
    this.#error = error;
  }

  handleReadyForQuery(): void {
    if (this.#error) this.#reject(this.#error);
    else this.#resolve();
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleCommandComplete(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** A value in COPY's text format: NULL as \N, backslash, tab and line breaks escaped. */
function copyText(value: unknown): string {
  if (value === null) return '\\N';
  if (typeof value === 'string') {
    return NEEDS_ESCAPE.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c] as string) : value;
  }
  if (Buffer.isBuffer(value)) return `\\\\x${value.toString('hex')}`;
  return String(value);
}

/** The rows of `statement` as COPY text, in chunks of about CHUNK_BYTES. */
function* copyChunks(statement: BetterSqlite3.Statement): Generator<string> {
  let chunk = '';
  for (const row of statement.raw(true).iterate() as Iterable<unknown[]>) {
    let line = copyText(row[0]);
    for (let index = 1; index < row.length; index++) line += `\t${copyText(row[index])}`;
    chunk += `${line}\n`;
    if (chunk.length >= CHUNK_BYTES) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk.length > 0) yield chunk;
}

/**
 * Migrates the database at `url` with the store's migrations and copies every row of the SQLite
 * file at `path` into it: each table both have, the columns both have. Triggers (store totals,
 * foreign keys) are off while copying: the totals come from the SQLite file as they are.
 */
export async function loadDataset(
  url: string,
  path: string,
  log: (line: string) => void = console.log,
): Promise<void> {
  await (await openPostgresDatabase(url)).destroy();
  const sqlite = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    await withClient(url, async (client) => {
      await client.query('SET session_replication_role = replica');
      const { rows: tables } = await client.query<{ name: string }>(
        `SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'kysely_%'`,
      );
      const sqliteColumns = (table: string) =>
        new Set(
          (sqlite.pragma(`table_info(${JSON.stringify(table)})`) as { name: string }[]).map(
            (column) => column.name,
          ),
        );
      const copied = tables.map((table) => table.name).filter((table) => sqliteColumns(table).size > 0);
      // One TRUNCATE: a table's alone would cascade to the tables referencing it, copied already.
      await client.query(`TRUNCATE ${copied.map((table) => `"${table}"`).join(', ')}`);
      for (const name of copied) {
        const inSqlite = sqliteColumns(name);
        const { rows } = await client.query<{ name: string }>(
          `SELECT column_name AS name FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`,
          [name],
        );
        const columns = rows.map((row) => row.name).filter((column) => inSqlite.has(column));
        const list = columns.map((column) => `"${column}"`).join(', ');
        const started = performance.now();
        const copy = new CopyFrom(`COPY "${name}" (${list}) FROM STDIN`, () =>
          copyChunks(sqlite.prepare(`SELECT ${list} FROM "${name}"`)),
        );
        client.query(copy as unknown as pg.Submittable);
        await copy.done;
        const { rows: counted } = await client.query<{ count: string }>(`SELECT count(*) FROM "${name}"`);
        log(`  ${name}: ${counted[0]?.count} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }
      const { rows: identities } = await client.query<{ table: string; column: string }>(
        `SELECT table_name AS table, column_name AS column FROM information_schema.columns
         WHERE table_schema = 'public' AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')`,
      );
      for (const { table, column } of identities) {
        await client.query(
          `SELECT setval(pg_get_serial_sequence($1, $2), coalesce(max("${column}"), 0) + 1, false) FROM "${table}"`,
          [`"${table}"`, column],
        );
      }
      const started = performance.now();
      await client.query('VACUUM ANALYZE');
      log(`  VACUUM ANALYZE in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    });
  } finally {
    sqlite.close();
  }
}

/** Whether the database at `url` holds the whole dataset. */
async function holdsDataset(url: string): Promise<boolean> {
  return withClient(url, async (client) => {
    // Asked apart: a statement naming a missing table fails as it is parsed, whatever its CASE.
    const { rows: tables } = await client.query(`SELECT to_regclass('public.jobs') IS NOT NULL AS present`);
    if (tables[0]?.present !== true) return false;
    const { rows } = await client.query<{ jobs: string }>(
      `SELECT count(*) AS jobs FROM (SELECT 1 FROM jobs LIMIT ${JOB_COUNT}) j`,
    );
    return Number(rows[0]?.jobs) === JOB_COUNT;
  });
}

/**
 * The dataset in PostgreSQL: in the database at `databaseUrl` (loaded into it first when it does
 * not hold it), or in the embedded cluster kept under bench/data/ (loaded on first use).
 */
export async function ensurePostgresDataset(
  databaseUrl: string | undefined,
  log: (line: string) => void = console.log,
): Promise<PostgresDataset> {
  const sqlitePath = await ensureDataset(log);
  const embedded =
    databaseUrl === undefined
      ? await startEmbeddedPostgres({
          keepIn: join(datasetPath(), '..', `pg-v${DATASET_VERSION}`),
          settings: SERVER_SETTINGS,
        })
      : undefined;
  const adminUrl = databaseUrl ?? (embedded?.url as string);
  const url = databaseUrl ?? withDatabase(adminUrl, LOADED);
  try {
    if (embedded !== undefined) {
      const exists = await withClient(adminUrl, async (client) => {
        const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [LOADED]);
        return rowCount === 1;
      });
      if (!exists) {
        log(`loading ${sqlitePath} into PostgreSQL (${LOADED}, kept under bench/data/)…`);
        const started = performance.now();
        await withClient(adminUrl, async (client) => {
          await client.query(`DROP DATABASE IF EXISTS ${LOADING}`);
          await client.query(`CREATE DATABASE ${LOADING}`);
        });
        await loadDataset(withDatabase(adminUrl, LOADING), sqlitePath, log);
        // Renamed once complete: an interrupted load is started again, never used.
        await withClient(adminUrl, (client) => client.query(`ALTER DATABASE ${LOADING} RENAME TO ${LOADED}`));
        log(`loaded in ${((performance.now() - started) / 1000).toFixed(0)} s`);
      }
    } else if (!(await holdsDataset(url))) {
      log(`loading ${sqlitePath} into ${new URL(url).pathname.slice(1)}…`);
      await loadDataset(url, sqlitePath, log);
    }
  } catch (error) {
    await embedded?.stop();
    throw error;
  }
  return {
    url,
    async copyDatabase(name) {
      await withClient(adminUrl, async (client) => {
        await client.query(`DROP DATABASE IF EXISTS ${name}`);
        await client.query(`CREATE DATABASE ${name} TEMPLATE ${new URL(url).pathname.slice(1)}`);
      });
      return withDatabase(adminUrl, name);
    },
    async dropDatabase(name) {
      await withClient(adminUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
    stop: async () => embedded?.stop(),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { 'database-url': { type: 'string' } } });
  const dataset = await ensurePostgresDataset(values['database-url']);
  console.log(`the dataset is in ${new URL(dataset.url).pathname.slice(1)}`);
  await dataset.stop();
}
