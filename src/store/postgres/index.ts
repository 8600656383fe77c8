import { createSqlStore } from '../sql/store.js';
import type { OnQuery, Store } from '../store.js';
import { openPostgresDatabase } from './database.js';
import { postgresDialect } from './dialect.js';
import { postgresNotifier } from './notifier.js';

/**
 * The PostgreSQL store: one pool, for reads too. Streamed exports read their keyset batches through
 * it; each batch is one short statement on whichever connection is free, so it never holds up writers.
 */
export async function openPostgresStore(url: string, onQuery?: OnQuery): Promise<Store> {
  const db = await openPostgresDatabase(url, onQuery);
  return createSqlStore({
    db,
    dialect: postgresDialect,
    readDb: db,
    notifier: postgresNotifier(url, db),
    close: () => db.destroy(),
  });
}
