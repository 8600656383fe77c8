import { type Kysely, sql } from 'kysely';
import type { DeviceGroup } from '../../model/device.js';
import type { CsvRecords, CsvRequest, ListRequest, StreamRequest } from '../store.js';
import type { CsvReader, SqlDialect } from './dialect.js';
import { GROUP_STORE_FIELDS } from './fields.js';
import { groupWhere } from './filters.js';
import { resolveSort } from './keyset.js';
import { csvPages, page } from './pages.js';
import type { Database } from './schema.js';

/**
 * The path one level up, '' above a top-level group: `rtrim` drops the last segment's characters
 * (every character but '/'), leaving the path up to its last '/', which `substr` then drops. The
 * same functions on both engines, counting characters.
 */
const upOne = (path: string) => {
  const head = `rtrim(${path}, replace(${path}, '/', ''))`;
  return sql.raw(`substr(${head}, 1, length(${head}) - 1)`);
};

/**
 * The account's groups, each counted with its subgroups: the distinct group paths of its devices
 * (an index-only read of `devices_group_path`), each path's count carried up to every ancestor.
 */
function groupsTable(accountId: number) {
  return sql<DeviceGroup>`(with recursive own_groups(path, n) as (
      select d.group_path, count(*) from devices d
      where d.customer_id = ${accountId} and d.group_path <> '' group by d.group_path
    ), lineage(path, n) as (
      select path, n from own_groups
      union all
      select ${upOne('path')}, n from lineage where ${upOne('path')} <> ''
    ), counted(path, device_count) as (
      select path, cast(sum(n) as integer) from lineage group by path
    )
    select path, substr(path, length(${upOne('path')}) + 2) as name,
      case when ${upOne('path')} = '' then null else ${upOne('path')} end as parent, device_count
    from counted)`;
}

function groupsQuery(db: Kysely<Database>, dialect: SqlDialect, request: StreamRequest) {
  const base = db.selectFrom(groupsTable(request.accountId).as('grp')).selectAll();
  return request.query === null ? base : base.where(groupWhere(request.query, dialect.id, Date.now()));
}

const groupSort = (request: StreamRequest) => resolveSort(request.order, GROUP_STORE_FIELDS, 'path', 'grp');

export function listGroups(
  db: Kysely<Database>,
  dialect: SqlDialect,
  request: ListRequest,
): Promise<DeviceGroup[]> {
  return page(groupsQuery(db, dialect, request), groupSort(request), request.after, request.limit).execute();
}

export function exportGroups(
  db: Kysely<Database>,
  dialect: SqlDialect,
  reader: CsvReader,
  request: CsvRequest,
): CsvRecords {
  return csvPages(
    reader,
    groupsQuery(db, dialect, request),
    'grp',
    groupSort(request),
    request,
    GROUP_STORE_FIELDS,
  );
}
