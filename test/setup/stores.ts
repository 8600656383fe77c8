import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore, type SqliteStoreOptions } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { newPostgresDatabase } from './databases.js';

/** The engine of this test project: vitest.config.ts runs some tests again with `postgres`. */
export const TEST_ENGINE: 'sqlite' | 'postgres' =
  process.env.FLEETJOBS_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

/** A fresh, empty store of the project's engine; `dispose` closes it and removes its files. */
/** SQLite's options (`maxPageCount` applies to SQLite only); `onQuery` applies to both engines. */
export type TestStoreOptions = SqliteStoreOptions;

export async function openTestStore(
  options: TestStoreOptions = {},
): Promise<{ store: Store; dispose(): Promise<void> }> {
  if (TEST_ENGINE === 'postgres') {
    const store = await openPostgresStore(await newPostgresDatabase(), options.onQuery);
    return { store, dispose: () => store.close() };
  }
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-test-'));
  const store = await openSqliteStore(join(dir, 'fleetjobs.db'), options);
  return {
    store,
    async dispose() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
