import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import type { CompiledQuery } from 'kysely';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CsvCell, type JsonPlan, jsonBatch } from '../../../src/model/csv.js';
import { CONNECTION_PRAGMAS } from '../../../src/store/sqlite/database.js';
import { SqliteReadPool } from '../../../src/store/sqlite/read-pool.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-read-pool-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

let databases = 0;
let writer: Database.Database;
let path: string;
let pool: SqliteReadPool;

beforeEach(() => {
  path = join(folder, `pool-${++databases}.db`);
  writer = new Database(path);
  writer.pragma('journal_mode = WAL');
  writer.exec(`
    CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, made INTEGER) STRICT;
    CREATE TABLE loose (id INTEGER PRIMARY KEY, value);`);
});
afterEach(async () => {
  await pool?.close();
  writer.close();
});

const compiled = (sql: string, parameters: readonly unknown[] = []): CompiledQuery =>
  ({ sql, parameters, query: undefined }) as unknown as CompiledQuery;

const plan = (fields: string[], kinds: CsvCell[], limit: number): JsonPlan => ({
  fields,
  columns: fields.map((_, index) => index),
  kinds,
  keyset: [0, 0],
  limit,
});

/** A page of `items` in id order, as the store asks for one: a row more than the page holds. */
const itemsPage = (limit: number, after = 0) =>
  compiled('SELECT id, name, made FROM items WHERE id > ? ORDER BY id LIMIT ?', [after, limit + 1]);
const ITEMS_PLAN = (limit: number) => plan(['id', 'name', 'made'], ['value', 'value', 'timestamp'], limit);

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The page as the model encodes it in JavaScript, from the rows read on the writer's connection. */
function modelPage(sql: string, parameters: readonly unknown[], page: JsonPlan) {
  const rows = writer
    .prepare(sql)
    .raw(true)
    .all(...parameters) as unknown[][];
  const batch = jsonBatch(rows, page);
  return { json: text(batch.json), count: batch.count, next: batch.next };
}

async function poolPage(sql: string, parameters: readonly unknown[], page: JsonPlan) {
  const batch = await pool.readJson(compiled(sql, parameters), page);
  return { json: text(batch.json), count: batch.count, next: batch.next };
}

describe('SQLite read pool: JSON pages', () => {
  beforeEach(() => {
    pool = new SqliteReadPool(path, CONNECTION_PRAGMAS, 1);
  });

  it('writes any text, integer and timestamp as the model does, with the count and where the next page starts', async () => {
    const insert = writer.prepare('INSERT INTO items (id, name, made) VALUES (?, ?, ?)');
    // Timestamps across 1970 and 9999: the statement writes the years in between, jsonBatch the others.
    const made = fc.oneof(
      fc.constant(null),
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
      fc.integer({ min: -62_000_000_000_000, max: 8_640_000_000_000_000 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.option(fc.string({ unit: 'binary', maxLength: 12 })), made), { maxLength: 7 }),
        fc.integer({ min: 1, max: 4 }),
        async (items, limit) => {
          writer.exec('DELETE FROM items');
          for (const [index, [name, time]] of items.entries()) insert.run(index + 1, name, time);
          for (let after = 0; after <= items.length; after += limit) {
            const { sql, parameters } = itemsPage(limit, after);
            expect(await poolPage(sql, parameters, ITEMS_PLAN(limit))).toEqual(
              modelPage(sql, parameters, ITEMS_PLAN(limit)),
            );
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('writes control characters, quotes, backslashes and astral characters as JSON.stringify does', async () => {
    const names = [
      '\u0000\u0001\b\t\n\u000b\f\r\u001f',
      '"quoted" \\ back/slash',
      '\u007f\u0080\u2028\u2029',
      '😀 naïve 日本',
    ];
    for (const [index, name] of names.entries())
      writer.prepare('INSERT INTO items VALUES (?, ?, ?)').run(index + 1, name, 0);
    const { sql, parameters } = itemsPage(10);
    const page = await poolPage(sql, parameters, ITEMS_PLAN(10));
    expect(page.json).toBe(
      JSON.stringify(names.map((name, index) => ({ id: index + 1, name, made: '1970-01-01T00:00:00.000Z' }))),
    );
  });

  it('writes a fraction and a value of an untyped column as the model does', async () => {
    const values = [1.0, 1e21, 0.1 + 0.2, -0, 7, 'text'];
    for (const [index, value] of values.entries())
      writer.prepare('INSERT INTO loose VALUES (?, ?)').run(index + 1, value);
    const sql = 'SELECT id, value FROM loose ORDER BY id LIMIT ?';
    const loosePlan = plan(['id', 'value'], ['value', 'value'], 10);
    expect(await poolPage(sql, [11], loosePlan)).toEqual(modelPage(sql, [11], loosePlan));
    expect(JSON.parse((await poolPage(sql, [11], loosePlan)).json)).toEqual(
      values.map((value, index) => ({ id: index + 1, value: value === 0 ? 0 : value })),
    );
  });
});

describe('SQLite read pool: identical reads', () => {
  beforeEach(() => {
    pool = new SqliteReadPool(path, CONNECTION_PRAGMAS, 1);
    writer.prepare('INSERT INTO items VALUES (1, ?, 0)').run('first');
  });

  it('reads once for the identical pages waiting together, and they see a write answered before the last was asked', async () => {
    const page = itemsPage(10);
    // The one worker is given two reads at once: the third waits in the pool, where the fourth joins it.
    const busy = pool.read(compiled('SELECT count(*) AS n FROM items'));
    const given = pool.readJson(page, ITEMS_PLAN(10));
    const waiting = pool.readJson(page, ITEMS_PLAN(10));
    writer.prepare('INSERT INTO items VALUES (2, ?, 0)').run('second');
    const joined = pool.readJson(page, ITEMS_PLAN(10));
    const other = pool.readJson(itemsPage(1), ITEMS_PLAN(1));
    const [, first, second, third, small] = await Promise.all([busy, given, waiting, joined, other]);
    expect(third).toBe(second);
    expect(first).not.toBe(second);
    expect(second.count).toBe(2);
    expect(JSON.parse(text(third.json)).map((item: { name: string }) => item.name)).toEqual([
      'first',
      'second',
    ]);
    expect(small.count).toBe(1);
  });

  it('reads rows of identical statements once too, each caller getting rows of its own', async () => {
    const query = compiled('SELECT id, name FROM items ORDER BY id');
    const reads = [0, 1, 2, 3].map(() => pool.read(query));
    const [, , waiting, joined] = await Promise.all(reads);
    expect(joined).toEqual([{ id: 1, name: 'first' }]);
    expect(joined).toEqual(waiting);
    expect(joined?.[0]).not.toBe(waiting?.[0]);
  });

  it('answers every joined read with the error of its statement', async () => {
    const broken = compiled('SELECT nothing FROM items');
    const reads = [0, 1, 2, 3].map(() => pool.read(broken));
    const settled = await Promise.allSettled(reads);
    expect(settled.map((result) => result.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
  });

  it('answers the reads waiting in the pool when it closes', async () => {
    const settling = Promise.allSettled([0, 1, 2, 3].map((n) => pool.read(compiled(`SELECT ${n} AS n`))));
    await pool.close();
    const settled = await settling;
    expect(settled.slice(2)).toEqual([
      { status: 'rejected', reason: new Error('the store is closed') },
      { status: 'rejected', reason: new Error('the store is closed') },
    ]);
  });
});
