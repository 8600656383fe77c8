import type BetterSqlite3 from 'better-sqlite3';
import { inProcessNotifier } from '../sql/notifier.js';
import { createSqlStore } from '../sql/store.js';
import type { Store } from '../store.js';
import { openSqliteDatabase, openSqliteReader, type SqliteStoreOptions } from './database.js';
import { sqliteDialect } from './dialect.js';

export type { SqliteStoreOptions } from './database.js';

/**
 * The SQLite store: one kysely connection for everything that writes or must be current, and a
 * separate read-only connection (opened on first use) for streamed exports.
 */
export async function openSqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<Store> {
  const db = await openSqliteDatabase(path, options);
  let readerConnection: BetterSqlite3.Database | undefined;
  return createSqlStore({
    db,
    dialect: sqliteDialect,
    notifier: inProcessNotifier(),
    reader: async (query) => {
      readerConnection ??= openSqliteReader(path);
      return readerConnection.prepare(query.sql).all(...query.parameters);
    },
    async close() {
      readerConnection?.close();
      await db.destroy();
    },
  });
}
