import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { badRequest } from '../../model/error.js';
import type { Keyset, Order, SortDirection } from '../store.js';

/**
 * Ordering and keyset paging, the same on every store. Items sort on one field, ties break on the
 * resource's key (`id` / `device_id`) in the same direction, and a missing value (NULL) sorts
 * before every value: first in `asc`, last in `desc`. A page continues strictly after the last
 * item seen, so paging sees every item that exists throughout exactly once, whatever is inserted or
 * deleted between pages.
 */

/** Sortable fields of each resource and the column each one reads. */
export const JOB_SORT_COLUMNS: Readonly<Record<string, string>> = {
  id: 'id',
  customer_id: 'customer_id',
  username: 'username',
  job_type: 'job_type',
  job_status: 'job_status',
  description: 'description',
  job_submit_time: 'job_submit_time',
  job_completion_time: 'job_completion_time',
  target_count: 'target_count',
  progress_success: 'progress_success',
  progress_failures: 'progress_failures',
  progress_canceled: 'progress_canceled',
  progress_pending: 'progress_pending',
};

export const JOB_NOT_NULL = [
  'id',
  'customer_id',
  'username',
  'job_type',
  'job_status',
  'job_submit_time',
  'target_count',
  'progress_success',
  'progress_failures',
  'progress_canceled',
  'progress_pending',
];

/** Every device field but `tags` (a list has no order). */
export const DEVICE_SORT_COLUMNS: Readonly<Record<string, string>> = {
  id: 'id',
  customer_id: 'customer_id',
  vendor_id: 'vendor_id',
  name: 'name',
  type: 'type',
  firmware_version: 'firmware_version',
  serial_number: 'serial_number',
  mac: 'mac',
  ip: 'ip',
  public_ip: 'public_ip',
  description: 'description',
  notes: 'notes',
  contact: 'contact',
  location: 'location',
  carrier: 'carrier',
  carrier2: 'carrier2',
  network: 'network',
  network2: 'network2',
  group: 'group_path',
  connection_status: 'connection_status',
  health_status: 'health_status',
  restricted_status: 'restricted_status',
  signal_percent: 'signal_percent',
  signal_percent2: 'signal_percent2',
  signal_quality: 'signal_quality',
  signal_quality2: 'signal_quality2',
  signal_strength: 'signal_strength',
  signal_strength2: 'signal_strength2',
  last_connect: 'last_connect',
  last_disconnect: 'last_disconnect',
  last_update: 'last_update',
};

export const DEVICE_NOT_NULL = [
  'id',
  'customer_id',
  'group_path',
  'connection_status',
  'health_status',
  'restricted_status',
];

/** Every target field but `response` (a JSON value has no order). */
export const TARGET_SORT_COLUMNS: Readonly<Record<string, string>> = {
  job_id: 'job_id',
  device_id: 'device_id',
  status: 'status',
  progress: 'progress',
  message: 'message',
  queued_time: 'queued_time',
  start_time: 'start_time',
  end_time: 'end_time',
};

export const TARGET_NOT_NULL = ['job_id', 'device_id', 'status', 'progress', 'queued_time'];

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
 * Resolves `order` against a resource's sortable columns (400 for another field). `alias` is the
 * table alias in the query; `notNull` lists the columns that never hold NULL. Text compares by
 * code point (SQLite's BINARY; PostgreSQL needs the "C" collation).
 */
export function resolveSort(
  order: Order,
  columns: Readonly<Record<string, string>>,
  keyField: string,
  alias: string,
  notNull: readonly string[],
): Sort {
  const column = Object.hasOwn(columns, order.field) ? columns[order.field] : undefined;
  const keyColumn = columns[keyField];
  if (column === undefined || keyColumn === undefined) {
    throw badRequest(`Cannot order by '${order.field}': expected one of ${Object.keys(columns).join(', ')}`);
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
    nullable: !notNull.includes(column),
  };
}

/** The ORDER BY terms: the sort column (missing values first in asc, last in desc), then the key. */
export function orderTerms(sort: Sort): RawBuilder<unknown>[] {
  const direction = sql.raw(sort.direction);
  const key = sql`${sort.key} ${direction}`;
  if (sort.column === sort.keyColumn) return [key];
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
