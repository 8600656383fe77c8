import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { startCheckpointer } from '../../../src/store/sqlite/checkpointer.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-checkpointer-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

/** The WAL's size in bytes: cut back to journal_size_limit when SQLite starts it over. */
const walBytes = (path: string): number => statSync(`${path}-wal`).size;
const SIZE_LIMIT = 64 * 1024;

it('lets a writer wait until a long WAL is wholly checkpointed, so that its next write restarts the WAL', async () => {
  const path = join(folder, 'wal.db');
  const writer = new Database(path);
  writer.pragma('journal_mode = WAL');
  writer.pragma('wal_autocheckpoint = 0');
  writer.pragma(`journal_size_limit = ${SIZE_LIMIT}`);
  writer.exec('CREATE TABLE pages (id INTEGER PRIMARY KEY, filler BLOB)');
  const checkpointer = startCheckpointer(path, () => undefined, 100);
  try {
    const insert = writer.prepare('INSERT INTO pages (filler) VALUES (?)');
    const write = (rows: number) =>
      writer.transaction(() => {
        for (let row = 0; row < rows; row++) insert.run(Buffer.alloc(4000));
      })();
    // Short: no wait.
    write(20);
    await checkpointer.caughtUp();
    // Long (about 600 frames): the wait lasts until every frame is copied; the next write then starts the WAL over.
    write(600);
    expect(walBytes(path)).toBeGreaterThan(500 * 4096);
    await checkpointer.caughtUp();
    write(1);
    expect(walBytes(path)).toBeLessThanOrEqual(SIZE_LIMIT + 2 * 4096);
  } finally {
    await checkpointer.stop();
    writer.close();
  }
});
