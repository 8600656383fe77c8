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

/** A node of the plan EXPLAIN (FORMAT JSON) writes. */
interface PlanNode {
  'Node Type': string;
  'Plan Rows': number;
  Plans?: PlanNode[];
}

const scansTable = (node: PlanNode): boolean =>
  node['Node Type'] === 'Seq Scan' || (node.Plans ?? []).some(scansTable);

/**
 * With fewer matching devices than `max` (but too many for the semi-join), the probe looks each
 * target's device up in the set of their keys, which PostgreSQL gathers once per page and hashes
 * (a hashed subplan), instead of joining each target's device (~2.5 µs a target). Reading the keys
 * first and binding them as an array, as this did before, cost a round trip, their transfer and
 * the planning of the array: the reference query of bench/query-pages.ts (6,363 devices) 25-26 ms
 * a page -> 20-22 ms. `OR false` keeps the IN a subplan: as the probe's own semi-join it would look
 * each target's device up again (40 ms). Whether they are that few is asked of the planner's
 * estimate (planning only; migration 014 gives it the folded texts' statistics), so that a common
 * condition is not gathered in vain; a wrong estimate costs a gathering or a probe too many, never a
 * plan driven from the devices (probeEachRow). Devices found through an index alone cost less to
 * gather, and the more of them match the fewer jobs a probe reads: device.group startsWith
 * '/NorthWest' (14,590 of 100,000 devices) probed 20-22 ms a page, gathered 12-13 ms; `indexedMax`
 * is about where probing wins again (a quarter of 100,000 devices, each job with three targets).
 */
const deviceKeySet: DeviceKeySet = {
  max: 10_000,
  indexedMax: 25_000,
  async estimate(db, select) {
    const { rows } = await sql<{
      'QUERY PLAN': { Plan: PlanNode }[];
    }>`EXPLAIN (FORMAT JSON) ${select}`.execute(db);
    const plan = rows[0]?.['QUERY PLAN']?.[0]?.Plan;
    if (plan === undefined) return { rows: Number.POSITIVE_INFINITY, indexed: false };
    return { rows: plan['Plan Rows'], indexed: !scansTable(plan) };
  },
  holds: (devices) => sql<SqlBool>`(t.device_pk IN (${devices}) OR false)`,
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
  // OFFSET keeps the EXISTS a subplan of its own (PostgreSQL neither joins nor hashes a subquery
  // with one). As a semi-join it was planned from the device side whenever the planner thought
  // few devices matched, as it does of a condition on a text field it keeps no statistics of
  // (lower(firmware_version) = …, taken to hold for 0.5 % of them): a page of
  // firmware_version = '24.9.79' (20 % of the devices) read 460,000 jobs' ids to sort them, 2.3 s,
  // where probing each job in page order takes 14 ms.
  probeEachRow: sql`OFFSET 0`,
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
