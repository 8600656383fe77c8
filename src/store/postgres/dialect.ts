import { type SqlBool, sql } from 'kysely';
import { AppError, badRequest, conflict } from '../../model/error.js';
import type { DeviceKeySet, SqlDialect } from '../sql/dialect.js';

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

/**
 * With fewer matching devices than `max` (but too many for the semi-join), the probe looks each
 * target's device up in the set of their keys, read first and bound as one array that PostgreSQL
 * hashes once (a constant of its custom plan), instead of joining each target's device: the
 * reference query of bench/query-pages.ts (6,363 devices) read 17,000 targets' devices at ~13 µs
 * each (270 ms); the hashed set answers it in ~20 ms after ~50 ms reading the keys. `max` is about
 * where reading the keys costs what it saves. Whether they are that few is asked of the planner's
 * estimate (planning only), so that a common condition does not read `max` keys in vain.
 * `device_pk + 0`: as an index condition the array would be searched again for every job.
 */
const deviceKeySet: DeviceKeySet = {
  max: 10_000,
  async estimate(db, select) {
    const { rows } = await sql<{
      'QUERY PLAN': { Plan: { 'Plan Rows': number } }[];
    }>`EXPLAIN (FORMAT JSON) ${select}`.execute(db);
    return rows[0]?.['QUERY PLAN']?.[0]?.Plan?.['Plan Rows'] ?? Number.POSITIVE_INFINITY;
  },
  holds: (keys) => sql<SqlBool>`t.device_pk + 0 = any(cast(${keys} as bigint[]))`,
};

export const postgresDialect: SqlDialect = {
  id: 'postgres',
  inIntegers: (expression, ids) => sql`${expression} = any(cast(${ids} as bigint[]))`,
  inTexts: (expression, values) => sql`${expression} = any(cast(${values} as text[]))`,
  textTable: (values, alias) => sql`unnest(cast(${values} as text[])) as ${sql.id(alias)}(value)`,
  jsonArrayElements: (expression, alias) =>
    sql`jsonb_array_elements_text(cast(${expression} as jsonb)) as ${sql.id(alias)}(value)`,
  writesInWith: true,
  jsonRecords: (table, columns, json) =>
    sql`select ${sql.join(columns.map((column) => sql.ref(column)))}
      from json_populate_recordset(null::${sql.table(table)}, cast(${json} as json))`,
  // Another node's transaction changing a row is skipped, not waited for: it sends that request.
  claimLock: (alias) => sql`for update of ${sql.id(alias)} skip locked`,
  lockRows: (alias) => sql`for update of ${sql.id(alias)}`,
  deviceKeySet,
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
