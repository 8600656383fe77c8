import { type RawBuilder, type SqlBool, sql } from 'kysely';
import type { SqlDialect } from '../sql/dialect.js';

/** A JSON array as one parameter, read back as rows by json_each. */
const jsonList = (values: readonly (number | string)[]) =>
  sql`(select value from json_each(${JSON.stringify(values)}))`;

const inList = (expression: RawBuilder<unknown>, values: readonly (number | string)[]) =>
  sql<SqlBool>`${expression} in ${jsonList(values)}`;

export const sqliteDialect: SqlDialect = {
  id: 'sqlite',
  inIntegers: inList,
  inTexts: inList,
  textTable: (values, alias) => sql`json_each(${JSON.stringify(values)}) ${sql.id(alias)}`,
  jsonArrayElements: (expression, alias) => sql`json_each(${expression}) ${sql.id(alias)}`,
  writesInWith: false,
  jsonRecords: (_table, columns, json) =>
    sql`select ${sql.join(columns.map((column) => sql`row.value ->> ${`$.${column}`} as ${sql.id(column)}`))}
      from json_each(${json}) row`,
  // Writers are serial: the rows a transaction selects stay as they are until it commits.
  claimLock: () => sql``,
  lockRows: () => sql``,
  // The planner would drive the probe from a list of keys (a lookup per listed device for every job).
  deviceKeySet: null,
  // SQLite runs a correlated EXISTS for each row of the outer query.
  probeEachRow: sql``,
  isRetryable: () => false,
  mapError: (error) => error,
};
