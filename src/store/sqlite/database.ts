import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  Migrator,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteDriver,
  type SqliteStatement,
} from 'kysely';
import { queryLog } from '../sql/dialect.js';
import type { Database } from '../sql/schema.js';
import type { OnQuery } from '../store.js';
import { migrations } from './migrations/index.js';

const BUSY_TIMEOUT_MS = 5_000;
const CACHE_KIB = 64 * 1024;
const MMAP_BYTES = 1024 * 1024 * 1024;
const OPTIMIZE_EVERY_MS = 60 * 60 * 1000;
const CACHED_STATEMENTS = 500;

/**
 * The connection as kysely sees it, with the statements it prepares kept for reuse (the most
 * recently used CACHED_STATEMENTS): kysely prepares every statement it runs, and preparing cost
 * the dispatcher about a fifth of its CPU in a dispatch backlog (bench/backlog.ts, --cpu-prof).
 * A statement still being iterated (a streamed read) is busy and cannot run twice at once: then
 * a fresh one is prepared.
 */
export function withStatementCache(connection: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => connection.close(),
    prepare(text: string): SqliteStatement {
      const cached = statements.get(text);
      if (cached !== undefined && !cached.busy) {
        statements.delete(text);
        statements.set(text, cached);
        return cached;
      }
      const statement = connection.prepare(text);
      if (cached === undefined) {
        statements.set(text, statement);
        if (statements.size > CACHED_STATEMENTS) statements.delete(statements.keys().next().value as string);
      }
      return statement;
    },
  };
}

/**
 * Transactions take the write lock when they begin (BEGIN IMMEDIATE): a transaction that reads and
 * then writes cannot fail half-way with SQLITE_BUSY when another process (the CLI) writes too; it
 * waits up to busy_timeout for the lock instead. SQLite rolls a transaction back by itself on some
 * errors (SQLITE_FULL among them): then there is nothing left to roll back, and the error to report
 * is the one that caused it, not the failed ROLLBACK's.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  constructor(private readonly database: BetterSqlite3.Database) {
    super({ database: withStatementCache(database) });
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.database.inTransaction) await super.rollbackTransaction(connection);
  }
}

/**
 * SQLite's DDL is transactional, though kysely's adapter says otherwise: so told, the migrator runs
 * the pending migrations in one transaction, and a process killed while migrating (a restart after
 * an upgrade) leaves the store as it was, not half migrated.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly connection: BetterSqlite3.Database) {
    super({ database: connection });
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.connection);
  }
}

/**
 * Set on every connection, the read-only one's included. Pages of a large store are read through a
 * memory map and kept in a 64 MiB cache: the page queries of bench/query-pages.ts run up to a third
 * faster than with the default 2 MiB cache.
 */
export const CONNECTION_PRAGMAS = [
  `busy_timeout = ${BUSY_TIMEOUT_MS}`,
  'foreign_keys = ON',
  `cache_size = -${CACHE_KIB}`,
  `mmap_size = ${MMAP_BYTES}`,
] as const;

function openWriter(path: string): BetterSqlite3.Database {
  const connection = new BetterSqlite3(path);
  for (const pragma of CONNECTION_PRAGMAS) connection.pragma(pragma);
  connection.pragma('journal_mode = WAL');
  connection.pragma('synchronous = NORMAL');
  return connection;
}

/**
 * A read-only connection to the database at `path` on the event loop's thread, for the small reads
 * that must not wait for the writer's transaction (SqlStoreOptions.lookupDb): under WAL each of its
 * statements sees every write committed before it.
 */
export function openLookupDatabase(path: string, onQuery?: OnQuery): Kysely<Database> {
  const connection = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  for (const pragma of CONNECTION_PRAGMAS) connection.pragma(pragma);
  return new Kysely<Database>({
    dialect: new SqliteDialect({ database: withStatementCache(connection) }),
    ...queryLog(onQuery),
  });
}

export interface SqliteStoreOptions {
  /** SQLite's max_page_count once migrated: the store cannot grow past it (a full disk, for tests). */
  maxPageCount?: number;
  /** Told how long each statement took (the store query histogram of /metrics). */
  onQuery?: OnQuery;
}

/**
 * Opens (creating it and its folder if missing) the SQLite database at `path` with WAL, foreign
 * keys, a busy timeout and synchronous=NORMAL, and applies every pending migration.
 */
export async function openSqliteDatabase(
  path: string,
  options: SqliteStoreOptions = {},
): Promise<Kysely<Database>> {
  mkdirSync(dirname(path), { recursive: true });
  const connection = openWriter(path);
  const { onQuery } = options;
  const db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect(connection),
    ...queryLog(onQuery),
  });
  try {
    const { error, results } = await new Migrator({
      db,
      provider: { getMigrations: async () => migrations },
    }).migrateToLatest();
    if (error) {
      const failed = results?.find((result) => result.status === 'Error')?.migrationName;
      throw new Error(
        `Migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  } catch (error) {
    await db.destroy();
    throw error;
  }
  if (options.maxPageCount !== undefined) connection.pragma(`max_page_count = ${options.maxPageCount}`);
  keepStatisticsFresh(connection);
  return db;
}

/**
 * The query planner needs table statistics to choose between the plans of src/store/sql/filters.ts
 * (without them it scans jobs in time order for rare device conditions: 10–50 times slower). As
 * SQLite recommends for long-lived connections: `optimize` with analysis of every table at open,
 * then periodically; it analyzes only tables without statistics or that changed a lot since (a full
 * ANALYZE of 1M jobs and 3M targets takes ~2 s). No `analysis_limit`: its sampled statistics made
 * the planner pick a time-order scan over the username index (5 ms became 130 ms).
 */
function keepStatisticsFresh(connection: BetterSqlite3.Database): void {
  connection.pragma('optimize = 0x10002');
  setInterval(() => {
    if (connection.open) connection.pragma('optimize');
  }, OPTIMIZE_EVERY_MS).unref();
}
