import type pg from 'pg';
import { type CsvBatch, type CsvCell, type CsvPlan, csvBatch } from '../../model/csv.js';
import type { CsvReader } from '../sql/dialect.js';

/** The SQL function that writes each kind of cell as src/model/csv.ts does (PostgreSQL migration 012). */
const CELL_FUNCTION: Record<CsvCell, string> = {
  value: 'fleetjobs_csv',
  timestamp: 'fleetjobs_csv_time',
  json: 'fleetjobs_csv_json',
};

/**
 * `query` wrapped so that PostgreSQL answers its rows as one text of CSV records: a batch is one
 * value to decode, not a row of values per record, and the encoding runs in the server's process,
 * not on the event loop. The aggregate reads the rows in the order of `query` (a sorted, limited
 * subquery feeding a plain aggregate). `unencoded` counts the records the SQL functions could not
 * write exactly; `OFFSET 0` keeps the records a subquery of their own, so that each is built once
 * for the two aggregates that read it.
 */
function encodingQuery(query: string, plan: CsvPlan): string {
  const width = Math.max(...plan.columns, ...plan.keyset) + 1;
  const names = Array.from({ length: width }, (_, index) => `c${index}`).join(', ');
  const cells = plan.columns
    .map((column, index) => `${CELL_FUNCTION[plan.kinds[index] as CsvCell]}(s.c${column})`)
    .join(` || ',' || `);
  const [sortColumn, keyColumn] = plan.keyset;
  return `SELECT string_agg(record, '') AS text, count(*)::int AS rows,
    count(*) FILTER (WHERE record IS NULL)::int AS unencoded,
    (array_agg(sort_value))[count(*)::int] AS sort_value, (array_agg(key_value))[count(*)::int] AS key_value
    FROM (SELECT ${cells} || E'\\r\\n' AS record, s.c${sortColumn} AS sort_value, s.c${keyColumn} AS key_value
          FROM (${query}) AS s(${names}) OFFSET 0) AS records`;
}

interface EncodedBatch {
  text: string | null;
  rows: number;
  unencoded: number;
  sort_value: unknown;
  key_value: unknown;
}

/**
 * Reads a CSV export's batch on `pool` encoded by PostgreSQL; a batch holding a value its SQL
 * cannot write exactly (rare: see the migration) is read again as arrays and encoded here, by the
 * same function as every other engine's.
 */
export function postgresCsvReader(pool: pg.Pool): CsvReader {
  return async (query, plan): Promise<CsvBatch> => {
    const values = query.parameters as unknown[];
    const { rows } = await pool.query<EncodedBatch>({ text: encodingQuery(query.sql, plan), values });
    const batch = rows[0] as EncodedBatch;
    if (batch.unencoded === 0) {
      return {
        text: batch.text ?? '',
        rows: batch.rows,
        last: batch.rows === 0 ? null : [batch.sort_value, batch.key_value],
      };
    }
    const raw = await pool.query<unknown[]>({ text: query.sql, values, rowMode: 'array' });
    return csvBatch(raw.rows, plan);
  };
}
