import type { CompiledQuery } from 'kysely';
import type pg from 'pg';
import { type CsvCell, type JsonBatch, type JsonPlan, jsonBatch } from '../../model/csv.js';
import { readArrays } from './database.js';

/** 10000-01-01 in epoch milliseconds: from there on (and before 1970) isoTime writes another format. */
const FOUR_DIGIT_YEARS_END_MS = 253_402_300_800_000;

/** Column types whose to_json text is what JSON.stringify writes of the value pg reads (not a fraction's digits). */
const EXACT_TYPES = `('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype, 'text'::regtype)`;

const quoted = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** A cell as jsonBatch writes it: to_json of text or an integer; a timestamp (bigint ms) in ISO 8601. */
const cellJson = (kind: CsvCell, column: string): string =>
  kind === 'timestamp'
    ? `coalesce('"' || to_char(to_timestamp(${column} / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS') || '.' || lpad((${column} % 1000)::text, 3, '0') || 'Z"', 'null')`
    : `coalesce(to_json(${column})::text, 'null')`;

/**
 * A statement answering the page that `sql` (a SELECT of at most `plan.limit + 1` rows, in order)
 * reads, as one row, as the SQLite store's jsonPageStatement does: the JSON array of its first
 * `plan.limit` items (built by PostgreSQL, so the event loop neither parses the rows nor encodes
 * them), the rows read, the sort value and key of the last item when more follow, and whether
 * every cell was written exactly (its column an integer or text, a timestamp in the years written
 * as YYYY; else the page is read again as rows and encoded by jsonBatch). Undefined when a cell
 * holds JSON text (written in JSON.parse's normal form by jsonBatch).
 */
export function jsonPageStatement(sql: string, plan: JsonPlan): string | undefined {
  const { fields, columns, kinds, keyset, limit } = plan;
  if (kinds.includes('json') || !Number.isSafeInteger(limit) || limit < 1) return undefined;
  const width = Math.max(...columns, ...keyset) + 1;
  const names = Array.from({ length: width }, (_, index) => `c${index}`).join(', ');
  const cell = (index: number) => `p.c${columns[index] as number}`;
  const item = fields
    .map(
      (field, index) =>
        `${quoted(`${index === 0 ? '{' : ','}${JSON.stringify(field)}:`)} || ${cellJson(kinds[index] as CsvCell, cell(index))}`,
    )
    .join(' || ');
  // Types are checked on the first row (a column has one); timestamps on every row.
  const exact = fields.map((_, index) =>
    kinds[index] === 'timestamp'
      ? `(${cell(index)} IS NULL OR ${cell(index)} BETWEEN 0 AND ${FOUR_DIGIT_YEARS_END_MS - 1})`
      : `(p.n > 1 OR pg_typeof(${cell(index)}) IN ${EXACT_TYPES})`,
  );
  const [sortColumn, keyColumn] = keyset;
  const last = (column: number) => `max(CASE WHEN p.n = ${limit} THEN p.c${column} END)`;
  return `SELECT '[' || coalesce(string_agg(p.item, ',' ORDER BY p.n) FILTER (WHERE p.n <= ${limit}), '') || ']',
  count(*), ${last(sortColumn as number)}, ${last(keyColumn as number)}, coalesce(bool_and(p.exact), true)
FROM (SELECT ${item} || '}' AS item, ${exact.join(' AND ')} AS exact, p.*
  FROM (SELECT s.*, row_number() OVER () AS n FROM (${sql}) AS s(${names})) p) p`;
}

/**
 * Reads a JSON page on `pool`: written by PostgreSQL where jsonPageStatement writes it exactly,
 * else read as arrays and encoded by jsonBatch.
 */
export function postgresJsonReader(
  pool: pg.Pool,
): (query: CompiledQuery, plan: JsonPlan) => Promise<JsonBatch> {
  return async (query, plan) => {
    const statement = jsonPageStatement(query.sql, plan);
    if (statement !== undefined) {
      const { rows } = await pool.query<[string, number, unknown, unknown, boolean]>({
        text: statement,
        values: [...query.parameters],
        rowMode: 'array',
      });
      const [json, read, sort, key, exact] = rows[0] as [string, number, unknown, unknown, boolean];
      if (exact) {
        const count = Number(read);
        return {
          json: Buffer.from(json),
          count: Math.min(count, plan.limit),
          next: count > plan.limit ? [sort, key] : null,
        };
      }
    }
    return jsonBatch(await readArrays(pool, query), plan);
  };
}
