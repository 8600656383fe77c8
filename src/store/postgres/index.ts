import { createSqlStore } from '../sql/store.js';
import type { OnQuery, Store } from '../store.js';
import { openPostgresDatabase } from './database.js';
import { postgresDialect } from './dialect.js';
import { postgresNotifier } from './notifier.js';

/**
 * The PostgreSQL store: one pool. Streamed exports read their keyset batches through it too; each
 * batch is one short statement on whichever connection is free, so it never holds up writers.
 */
export async function openPostgresStore(url: string, onQuery?: OnQuery): Promise<Store> {
  const db = await openPostgresDatabase(url, onQuery);
  return createSqlStore({
    db,
    dialect: postgresDialect,
    reader: async (query) => (await db.executeQuery(query)).rows,
    notifier: postgresNotifier(url, db),
    close: () => db.destroy(),
  });
}
