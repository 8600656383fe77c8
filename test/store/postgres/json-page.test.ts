import fc from 'fast-check';
import type { CompiledQuery } from 'kysely';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CsvCell, type JsonPlan, jsonBatch } from '../../../src/model/csv.js';
import { postgresPool, readArrays } from '../../../src/store/postgres/database.js';
import { postgresJsonReader } from '../../../src/store/postgres/json-page.js';
import { newPostgresDatabase } from '../../setup/databases.js';

let pool: pg.Pool;
beforeAll(async () => {
  pool = postgresPool(await newPostgresDatabase());
  await pool.query(`
    CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT COLLATE "C", made BIGINT);
    CREATE TABLE loose (id BIGINT PRIMARY KEY, value DOUBLE PRECISION)`);
});
afterAll(() => pool?.end());

const compiled = (sql: string, parameters: readonly unknown[]): CompiledQuery =>
  ({ sql, parameters, query: undefined }) as unknown as CompiledQuery;

const plan = (fields: string[], kinds: CsvCell[], limit: number): JsonPlan => ({
  fields,
  columns: fields.map((_, index) => index),
  kinds,
  keyset: [0, 0],
  limit,
});

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** The page as PostgreSQL writes it, and as the model encodes the same rows in JavaScript. */
async function bothPages(sql: string, parameters: readonly unknown[], page: JsonPlan) {
  const query = compiled(sql, parameters);
  const [written, encoded] = [
    await postgresJsonReader(pool)(query, page),
    jsonBatch(await readArrays(pool, query), page),
  ];
  return [written, encoded].map((batch) => ({
    json: text(batch.json),
    count: batch.count,
    next: batch.next,
  }));
}

describe('PostgreSQL JSON pages', () => {
  it('writes any text, integer and timestamp as the model does, with the count and where the next page starts', async () => {
    const made = fc.oneof(
      fc.constant(null),
      fc.integer({ min: 0, max: 253_402_300_799_999 }),
      fc.integer({ min: -62_000_000_000_000, max: 8_640_000_000_000_000 }),
    );
    const itemsPlan = (limit: number) => plan(['id', 'name', 'made'], ['value', 'value', 'timestamp'], limit);
    await fc.assert(
      fc.asyncProperty(
        // PostgreSQL text holds no NUL (the store refuses it with 400).
        fc.array(
          fc.tuple(
            fc.option(fc.string({ unit: 'binary', maxLength: 12 }).map((name) => name.replaceAll('\0', ''))),
            made,
          ),
          {
            maxLength: 7,
          },
        ),
        fc.integer({ min: 1, max: 4 }),
        async (items, limit) => {
          await pool.query('DELETE FROM items');
          for (const [index, [name, time]] of items.entries()) {
            await pool.query('INSERT INTO items VALUES ($1, $2, $3)', [index + 1, name, time]);
          }
          for (let after = 0; after <= items.length; after += limit) {
            const [written, encoded] = await bothPages(
              'SELECT id, name, made FROM items WHERE id > $1 ORDER BY id LIMIT $2',
              [after, limit + 1],
              itemsPlan(limit),
            );
            expect(written).toEqual(encoded);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('writes a fraction, infinity and NaN as the model does', async () => {
    const values = [1.0, 1e21, 0.1 + 0.2, 7.5, Number.POSITIVE_INFINITY, Number.NaN];
    for (const [index, value] of values.entries()) {
      await pool.query('INSERT INTO loose VALUES ($1, $2)', [index + 1, value]);
    }
    const [written, encoded] = await bothPages(
      'SELECT id, value FROM loose ORDER BY id LIMIT $1',
      [11],
      plan(['id', 'value'], ['value', 'value'], 10),
    );
    expect(written).toEqual(encoded);
    expect(JSON.parse(written?.json ?? '')).toEqual(
      values.map((value, index) => ({ id: index + 1, value: Number.isFinite(value) ? value : null })),
    );
  });
});
