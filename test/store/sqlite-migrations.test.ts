import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { openSqliteDatabase } from '../../src/store/sqlite/database.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-migrations-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** Every table with its columns, as `table.column`. */
const columns = (path: string): string[] => {
  const connection = new BetterSqlite3(path, { readonly: true });
  try {
    return (
      connection
        .prepare(
          "select m.name || '.' || c.name as name from sqlite_master m, pragma_table_info(m.name) c where m.type = 'table'",
        )
        .all() as { name: string }[]
    )
      .map((row) => row.name)
      .sort();
  } finally {
    connection.close();
  }
};

it('a migration that fails half-way leaves the store as it was before it (the migrations run in one transaction)', async () => {
  const path = join(folder, 'store.db');
  await (await openSqliteDatabase(path)).destroy();
  // Undo the last migrations (012's index, and 010 but for the column its last statement adds):
  // run again, 010 adds its first column, then fails on that one.
  const connection = new BetterSqlite3(path);
  connection.exec(`delete from kysely_migration where name in ('010_retry_counts', '012_device_group_probe_index');
    drop index devices_pk_group;
    alter table job_targets drop column failed_retries;`);
  connection.close();
  const before = columns(path);

  await expect(openSqliteDatabase(path)).rejects.toThrow(
    /Migration 010_retry_counts failed: duplicate column name: timed_out_retries/,
  );
  expect(columns(path)).toEqual(before);
  expect(before).toContain('job_targets.timed_out_retries');
  expect(before).not.toContain('job_targets.failed_retries');
});
