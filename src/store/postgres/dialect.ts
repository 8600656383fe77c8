import { sql } from 'kysely';
import { AppError, badRequest, conflict } from '../../model/error.js';
import type { SqlDialect } from '../sql/dialect.js';

/** PostgreSQL error codes (SQLSTATE) a request can cause. */
const UNIQUE_VIOLATION = '23505';
const NUL_IN_TEXT = '22021';
const UNTRANSLATABLE = '22P05';
const DEADLOCK = '40P01';
const SERIALIZATION_FAILURE = '40001';

const sqlState = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;

export const postgresDialect: SqlDialect = {
  id: 'postgres',
  inIntegers: (expression, ids) => sql`${expression} = any(cast(${ids} as bigint[]))`,
  inTexts: (expression, values) => sql`${expression} = any(cast(${values} as text[]))`,
  textTable: (values, alias) => sql`unnest(cast(${values} as text[])) as ${sql.id(alias)}(value)`,
  jsonArrayElements: (expression, alias) =>
    sql`jsonb_array_elements_text(cast(${expression} as jsonb)) as ${sql.id(alias)}(value)`,
  jsonRecords: (table, columns, json) =>
    sql`select ${sql.join(columns.map((column) => sql.ref(column)))}
      from json_populate_recordset(null::${sql.table(table)}, cast(${json} as json))`,
  // Another node's transaction changing a row is skipped, not waited for: it sends that request.
  claimLock: (alias) => sql`for update of ${sql.id(alias)} skip locked`,
  lockRows: (alias) => sql`for update of ${sql.id(alias)}`,
  isRetryable: (error) => {
    const state = sqlState(error);
    return state === DEADLOCK || state === SERIALIZATION_FAILURE;
  },
  mapError(error) {
    if (error instanceof AppError) return error;
    switch (sqlState(error)) {
      case NUL_IN_TEXT:
      case UNTRANSLATABLE:
        return badRequest('Text holding NUL (U+0000) cannot be stored');
      case UNIQUE_VIOLATION:
        return conflict('It already exists (written at the same time by another request)');
      default:
        return error;
    }
  },
};
