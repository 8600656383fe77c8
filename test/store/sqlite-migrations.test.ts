import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { openSqliteDatabase } from '../../src/store/sqlite/database.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-migrations-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const tables = (path: string): string[] => {
  const connection = new BetterSqlite3(path, { readonly: true });
  try {
    return (
      connection.prepare("select name from sqlite_master where type = 'table'").all() as { name: string }[]
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
  // Undo the migrations from 008_events on, but for the table 008's last statement creates: run
  // again, 008 creates its first tables, then fails on that one (and 009 never runs).
  const connection = new BetterSqlite3(path);
  connection.exec(`delete from kysely_migration where name >= '008_events';
    drop index jobs_status_submit_time; drop index jobs_username_submit_time;
    drop table events; drop table event_sequence;`);
  connection.close();
  const before = tables(path);

  await expect(openSqliteDatabase(path)).rejects.toThrow(
    /Migration 008_events failed: table monitors already exists/,
  );
  expect(tables(path)).toEqual(before);
  expect(before).not.toContain('events');
});
