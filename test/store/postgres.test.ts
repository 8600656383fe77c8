import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openPostgresDatabase } from '../../src/store/postgres/database.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { CSV_BATCH } from '../../src/store/sql/pages.js';
import { newPostgresDatabase, postgresDatabases } from '../setup/databases.js';
import { storeSuite } from './store.suite.js';

const database = postgresDatabases();

// Exports in batches as small as SQLite's, so that the suite's exports end batches where it chose.
storeSuite('PostgreSQL', async () => openPostgresStore(await database(), undefined, CSV_BATCH));

describe('PostgreSQL connections', () => {
  it('the store goes on when the server ends its idle connections (a restart, a failover)', async () => {
    const url = await newPostgresDatabase();
    const store = await openPostgresStore(url);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await Promise.all([store.ensureAccount('alpha', 1), store.ensureAccount('beta', 2)]);
      const others = `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
      const { rowCount } = await admin.query(`SELECT pg_terminate_backend(pid) FROM (${others}) AS store`);
      expect(rowCount).toBeGreaterThan(0);
      // Once they are gone, the next round trip lets the store's connections read their end.
      while ((await admin.query(others)).rowCount !== 0);
      await admin.query('SELECT 1');
      expect((await store.ensureAccount('gamma', 3)).id).toBeGreaterThan(0);
      expect(await store.findUser('nobody')).toBeUndefined();
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it('every connection plans for data in memory, without JIT or parallel workers, whatever the server says (src/store/postgres/database.ts: a JIT-compiled page took 208 ms instead of 20)', async () => {
    const url = await newPostgresDatabase();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const db = await openPostgresDatabase(url);
    try {
      const database = new URL(url).pathname.slice(1);
      await admin.query(
        `ALTER DATABASE "${database}" SET jit = on; ALTER DATABASE "${database}" SET random_page_cost = 4; ALTER DATABASE "${database}" SET max_parallel_workers_per_gather = 2`,
      );
      const { rows } = await sql<{ name: string; setting: string }>`SELECT name, setting FROM pg_settings
        WHERE name IN ('jit', 'max_parallel_workers_per_gather', 'random_page_cost') ORDER BY name`.execute(
        db,
      );
      expect(rows).toEqual([
        { name: 'jit', setting: 'off' },
        { name: 'max_parallel_workers_per_gather', setting: '0' },
        { name: 'random_page_cost', setting: '1.1' },
      ]);
    } finally {
      await admin.end();
      await db.destroy();
    }
  });
});
