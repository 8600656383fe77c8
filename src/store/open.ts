import { openPostgresStore } from './postgres/index.js';
import { openSqliteStore } from './sqlite/index.js';
import type { OnQuery, Store } from './store.js';

export interface StoreConfig {
  /** The SQLite file (created with its folder if missing). */
  db: string;
  /** `postgres://…`: when set, PostgreSQL instead of SQLite. */
  databaseUrl?: string | undefined;
  /** Told how long each statement took. */
  onQuery?: OnQuery;
}

/** The store the configuration names. */
export async function openStore(config: StoreConfig): Promise<Store> {
  return config.databaseUrl
    ? openPostgresStore(config.databaseUrl, config.onQuery)
    : openSqliteStore(config.db, { onQuery: config.onQuery });
}
