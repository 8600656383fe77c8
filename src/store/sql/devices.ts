import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type Insertable, type Kysely, sql, type Updateable } from 'kysely';
import { DEVICE_FIELDS, DEVICE_SERVICE_FIELDS, type Device, type DeviceInput } from '../../model/device.js';
import { conflict } from '../../model/error.js';
import type { Millis } from '../../model/job.js';
import type { Query } from '../../query/index.js';
import type { CsvRecords, CsvRequest, ListRequest, NewDevice } from '../store.js';
import { EndedTargets } from './counts.js';
import type { CsvReader, SqlDialect } from './dialect.js';
import { deviceChanges, jobChanges, recordEvents, targetChanges } from './events.js';
import { DEVICE_STORE_FIELDS } from './fields.js';
import { deviceWhere } from './filters.js';
import { resolveSort } from './keyset.js';
import { csvPages, page } from './pages.js';
import { isPending } from './pending.js';
import { DEVICE_COLUMNS, deviceFromRow, TARGET_COLUMNS, targetFromRow } from './rows.js';
import type { Database, DevicesTable } from './schema.js';

type Db = Kysely<Database>;

/** The fields a client may write: never the id, the account or what the service sets. */
const WRITABLE_FIELDS: ReadonlySet<string> = new Set(
  DEVICE_FIELDS.filter(
    (field) => field !== 'id' && !(DEVICE_SERVICE_FIELDS as readonly string[]).includes(field),
  ),
);

/** The columns a client's fields write (`group` is stored as `group_path`, tags as JSON). */
function deviceColumns(input: DeviceInput): Updateable<DevicesTable> {
  const { group, tags, ...rest } = input;
  const columns: Updateable<DevicesTable> = Object.fromEntries(
    Object.entries(rest).filter(([field, value]) => value !== undefined && WRITABLE_FIELDS.has(field)),
  );
  if (group !== undefined) columns.group_path = group;
  if (tags !== undefined) columns.tags = JSON.stringify(tags);
  return columns;
}

/** The columns a new device row writes. */
const NEW_DEVICE_COLUMNS = [...DEVICE_COLUMNS, 'token_hash'] as const;

/** Every column of a new device row, defaults included. */
function newDeviceRow(accountId: number, device: NewDevice): Insertable<DevicesTable> {
  const { id, token_hash, ...input } = device;
  const row: Record<string, unknown> = Object.fromEntries(NEW_DEVICE_COLUMNS.map((column) => [column, null]));
  return {
    ...row,
    id,
    customer_id: accountId,
    token_hash,
    group_path: '',
    tags: '[]',
    connection_status: 'disconnected',
    health_status: 'unknown',
    restricted_status: 'unrestricted',
    ...deviceColumns(input),
  };
}

/** Mirrors the tags of the given devices into device_tags (for indexed tag lookups). */
async function writeTags(db: Db, dialect: SqlDialect, devicePks: number[]): Promise<void> {
  await sql`insert into device_tags (device_pk, tag)
    select d.pk, tag.value from devices d, ${dialect.jsonArrayElements(sql.ref('d.tags'), 'tag')}
    where ${dialect.inIntegers(sql.ref('d.pk'), devicePks)}
    on conflict do nothing`.execute(db);
}

/**
 * Devices a statement of createDevices adds at most, with their tags and events: a batch of 10,000
 * written at once held SQLite's event loop ~1 s (bench/create-job.ts).
 */
export const CREATE_DEVICES_SLICE = 500;

/**
 * Creates `devices` in one transaction (an id that exists already is 409 and nothing is created),
 * CREATE_DEVICES_SLICE a statement, the event loop free in between. Returns them in order.
 */
export async function createDevices(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  devices: NewDevice[],
): Promise<Device[]> {
  if (devices.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    const result: Device[] = [];
    for (let start = 0; start < devices.length; start += CREATE_DEVICES_SLICE) {
      if (start > 0) await yieldToEventLoop();
      const slice = devices.slice(start, start + CREATE_DEVICES_SLICE);
      const ids = slice.map((device) => device.id);
      const existing = await trx
        .selectFrom('devices')
        .select('id')
        .where(dialect.inTexts(sql.ref('id'), ids))
        .executeTakeFirst();
      if (existing) throw conflict(`Device ${existing.id} already exists`);
      // One statement for the slice: the rows travel as one JSON parameter.
      const rows = slice.map((device) => newDeviceRow(accountId, device));
      const columns = NEW_DEVICE_COLUMNS.map((column) => sql.ref(column));
      const { rows: inserted } = await sql<{ pk: number }>`insert into devices (${sql.join(columns)})
        ${dialect.jsonRecords('devices', NEW_DEVICE_COLUMNS, JSON.stringify(rows))}
        returning pk`.execute(trx);
      const pks = inserted.map((row) => row.pk);
      await writeTags(trx, dialect, pks);
      const created = await trx
        .selectFrom('devices')
        .select(DEVICE_COLUMNS)
        .where(dialect.inIntegers(sql.ref('pk'), pks))
        .execute();
      const byId = new Map(created.map((row) => [row.id, deviceFromRow(row)]));
      const added = ids.map((id) => byId.get(id) as Device);
      await recordEvents(trx, dialect, Date.now(), deviceChanges('INSERTION', added));
      for (const device of added) result.push(device);
    }
    return result;
  });
}

export async function getDevice(db: Db, accountId: number, id: string): Promise<Device | undefined> {
  const row = await db
    .selectFrom('devices')
    .select(DEVICE_COLUMNS)
    .where('customer_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row && deviceFromRow(row);
}

export async function updateDevice(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  id: string,
  patch: DeviceInput,
): Promise<Device | undefined> {
  const columns = deviceColumns(patch);
  if (Object.keys(columns).length === 0) return getDevice(db, accountId, id);
  return db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('devices')
      .set(columns)
      .where('customer_id', '=', accountId)
      .where('id', '=', id)
      .returning('pk')
      .executeTakeFirst();
    if (!updated) return undefined;
    if (patch.tags !== undefined) {
      await trx.deleteFrom('device_tags').where('device_pk', '=', updated.pk).execute();
      await writeTags(trx, dialect, [updated.pk]);
    }
    const device = await getDevice(trx, accountId, id);
    await recordEvents(trx, dialect, Date.now(), deviceChanges('UPDATE', device ? [device] : []));
    return device;
  });
}

/**
 * Removes the device. Its pending targets fail with `device deleted`; every target of it keeps its
 * `device_id` but loses its link to the device (ON DELETE SET NULL), so a device registered again
 * under the same id is not the same device. The affected jobs count them and settle.
 */
export async function deleteDevice(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  id: string,
  now: Millis,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const device = await trx
      .selectFrom('devices')
      .select(['pk', ...DEVICE_COLUMNS])
      .where('customer_id', '=', accountId)
      .where('id', '=', id)
      .executeTakeFirst();
    if (!device) return false;
    const failed = await trx
      .updateTable('job_targets')
      .set({ status: 'failed', message: 'device deleted', end_time: now, deadline: null, device_pk: null })
      .where('device_pk', '=', device.pk)
      .where(isPending('status'))
      .returning(TARGET_COLUMNS)
      .execute();
    await trx.deleteFrom('devices').where('pk', '=', device.pk).execute();
    const jobs = await new EndedTargets().addAll(failed).count(trx, dialect, now);
    await recordEvents(trx, dialect, now, [
      ...targetChanges(failed.map(targetFromRow)),
      ...jobChanges('UPDATE', jobs),
      ...deviceChanges('DELETION', [deviceFromRow(device)]),
    ]);
    return true;
  });
}

export async function setDeviceToken(
  db: Db,
  accountId: number,
  id: string,
  tokenHash: string,
): Promise<boolean> {
  const result = await db
    .updateTable('devices')
    .set({ token_hash: tokenHash })
    .where('customer_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

function devicesQuery(db: Db, dialect: SqlDialect, accountId: number, query: Query | null, now: Millis) {
  const base = db
    .selectFrom('devices as d')
    .select(DEVICE_COLUMNS.map((column) => `d.${column}` as const))
    .where('d.customer_id', '=', accountId);
  return query === null ? base : base.where(deviceWhere(query, dialect.id, now));
}

export async function listDevices(db: Db, dialect: SqlDialect, request: ListRequest): Promise<Device[]> {
  const sort = resolveSort(request.order, DEVICE_STORE_FIELDS, 'id', 'd');
  const query = devicesQuery(db, dialect, request.accountId, request.query, Date.now());
  return (await page(query, sort, request.after, request.limit).execute()).map(deviceFromRow);
}

const DEVICE_JSON: ReadonlySet<string> = new Set(['tags']);

export function exportDevices(
  db: Db,
  dialect: SqlDialect,
  reader: CsvReader,
  request: CsvRequest,
): CsvRecords {
  const sort = resolveSort(request.order, DEVICE_STORE_FIELDS, 'id', 'd');
  return csvPages(
    reader,
    devicesQuery(db, dialect, request.accountId, request.query, Date.now()),
    'd',
    sort,
    request,
    DEVICE_STORE_FIELDS,
    DEVICE_JSON,
  );
}

export async function existingDeviceIds(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  ids: string[],
): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom('devices as d')
    .select('d.id')
    .where('d.customer_id', '=', accountId)
    .where(dialect.inTexts(sql.ref('d.id'), ids))
    .execute();
  return rows.map((row) => row.id);
}
