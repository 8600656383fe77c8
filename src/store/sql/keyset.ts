import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { badRequest } from '../../model/error.js';
import type { Keyset, Order, SortDirection } from '../store.js';
import type { StoreFields } from './fields.js';

/**
 * Ordering and keyset paging, the same on every store. Items sort on one field, ties break on the
 * resource's key (`id` / `device_id`) in the same direction, and a missing value (NULL) sorts
 * before every value: first in `asc`, last in `desc`. A page continues strictly after the last
 * item seen, so paging sees every item that exists throughout exactly once, whatever is inserted or
 * deleted between pages.
 */

/** A resolved ordering: qualified sort and key columns, e.g. `j.job_status` and `j.id`. */
export interface Sort {
  /** The row property (unqualified column) that holds the sort value. */
  column: string;
  /** The row property that holds the key. */
  keyColumn: string;
  value: RawBuilder<unknown>;
  key: RawBuilder<unknown>;
  direction: SortDirection;
  /** Whether the sort column may be NULL (a missing value). */
  nullable: boolean;
}

/**
 * Resolves `order` against a resource's fields (fields.ts; 400 for another field). `alias` is the
 * table alias in the query. Text compares by code point (SQLite's BINARY; PostgreSQL's "C"
 * collation).
 */
export function resolveSort(order: Order, fields: StoreFields, keyField: string, alias: string): Sort {
  const sorted = fields.get(order.field);
  const column = sorted?.column;
  const keyColumn = fields.get(keyField)?.column;
  if (sorted === undefined || column === undefined || keyColumn === undefined) {
    throw badRequest(`Cannot order by '${order.field}': expected one of ${[...fields.keys()].join(', ')}`);
  }
  if (order.direction !== 'asc' && order.direction !== 'desc') {
    throw badRequest(`Invalid order direction '${String(order.direction)}': expected asc or desc`);
  }
  return {
    column,
    keyColumn,
    value: sql.ref(`${alias}.${column}`),
    key: sql.ref(`${alias}.${keyColumn}`),
    direction: order.direction,
    nullable: sorted.nullable,
  };
}

/**
 * The ORDER BY terms: the sort column (missing values first in asc, last in desc), then the key.
 * A column that holds no NULLs names no NULLS placement: PostgreSQL reads `x desc nulls last` from
 * an index on `x` only by sorting (a backward scan gives `desc nulls first`), but `x desc` in order.
 */
export function orderTerms(sort: Sort): RawBuilder<unknown>[] {
  const direction = sql.raw(sort.direction);
  const key = sql`${sort.key} ${direction}`;
  if (sort.column === sort.keyColumn) return [key];
  if (!sort.nullable) return [sql`${sort.value} ${direction}`, key];
  const nulls = sql.raw(sort.direction === 'asc' ? 'nulls first' : 'nulls last');
  return [sql`${sort.value} ${direction} ${nulls}`, key];
}

/**
 * The condition for "strictly after `after`" in the order of `sort`. Written as a row-value
 * comparison, so an index on (sort column, key) serves it as a range.
 */
export function afterCondition(sort: Sort, after: Keyset): RawBuilder<SqlBool> {
  const { value, key } = sort;
  const beyond = sql.raw(sort.direction === 'asc' ? '>' : '<');
  const keyBeyond = sql<SqlBool>`${key} ${beyond} ${after.key}`;
  if (sort.column === sort.keyColumn) return keyBeyond;
  if (after.value === null) {
    // asc: the rest of the NULLs, then every value; desc: NULLs come last, only the rest of them.
    return sort.direction === 'asc'
      ? sql<SqlBool>`((${value} is null and ${keyBeyond}) or ${value} is not null)`
      : sql<SqlBool>`(${value} is null and ${keyBeyond})`;
  }
  // A NULL sort value makes the comparison NULL (false): right in asc, where NULLs came first.
  const pairBeyond = sql<SqlBool>`(${value}, ${key}) ${beyond} (${after.value}, ${after.key})`;
  return sort.direction === 'desc' && sort.nullable
    ? sql<SqlBool>`(${pairBeyond} or ${value} is null)`
    : pairBeyond;
}

/** The keyset position of a row (as read from the database) in the order of `sort`. */
export function keysetOf(sort: Sort, row: Record<string, unknown>): Keyset {
  return { value: row[sort.column] as Keyset['value'], key: row[sort.keyColumn] as Keyset['key'] };
}
