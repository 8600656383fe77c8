import { Kysely, sql } from 'kysely';
import { queryLog, timedCsvReader } from '../sql/dialect.js';
import { inProcessNotifier } from '../sql/notifier.js';
import { CSV_BATCH } from '../sql/pages.js';
import type { Database } from '../sql/schema.js';
import { createSqlStore } from '../sql/store.js';
import type { Store } from '../store.js';
import { startCheckpointer } from './checkpointer.js';
import {
  CONNECTION_PRAGMAS,
  openLookupDatabase,
  openSqliteDatabase,
  type SqliteStoreOptions,
} from './database.js';
import { sqliteDialect } from './dialect.js';
import { SqliteReadPool, SqliteReadPoolDialect } from './read-pool.js';

export type { SqliteStoreOptions } from './database.js';

/** SQLite's default: the writer checkpoints again itself if the checkpointer stops. */
const AUTOCHECKPOINT_PAGES = 1000;

/**
 * The SQLite store: one connection for everything that writes or must be current, read-only
 * connections in worker threads (started on first use) for pages and streamed exports, and one
 * read-only connection beside the writer for credentials and single objects: the readers never
 * wait for a write transaction to release the writer (the workers never hold up the event loop
 * either), and under WAL each statement sees every committed write.
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const db = await openSqliteDatabase(path, options);
  await sql`pragma wal_autocheckpoint = 0`.execute(db);
  const checkpointer = startCheckpointer(path, () => {
    void sql`pragma wal_autocheckpoint = ${sql.raw(String(AUTOCHECKPOINT_PAGES))}`
      .execute(db)
      .catch(() => undefined);
  });
  const { onQuery } = options;
  const pool = new SqliteReadPool(path, CONNECTION_PRAGMAS);
  const readDb = new Kysely<Database>({
    dialect: new SqliteReadPoolDialect(pool),
    ...queryLog(onQuery),
  });
  const lookupDb = openLookupDatabase(path, onQuery);
  return createSqlStore({
    db,
    readDb,
    lookupDb,
    csvReader: {
      rows: CSV_BATCH,
      ranges: true,
      read: timedCsvReader((query, plan, onRead) => pool.readCsv(query, plan, onRead), onQuery),
    },
    jsonReader: timedCsvReader((query, plan) => pool.readJson(query, plan), onQuery),
    dialect: sqliteDialect,
    notifier: inProcessNotifier(),
    caughtUp: () => checkpointer.caughtUp(),
    async close() {
      await checkpointer.stop();
      await readDb.destroy();
      // Also when only exports read (kysely destroys a driver it started, and exports bypass it).
      await pool.close();
      await lookupDb.destroy();
      await db.destroy();
    },
  });
}
