import { type Kysely, type Selectable, sql } from 'kysely';
import type { EventTopic } from '../../model/event.js';
import type { Millis } from '../../model/job.js';
import type { LeasedMonitor, Monitor, MonitorSettings, MonitorStatus } from '../../model/monitor.js';
import type { DeliveryState, ListRequest, MonitorPatch } from '../store.js';
import type { SqlDialect } from './dialect.js';
import { lastEventId } from './events.js';
import { MONITOR_STORE_FIELDS } from './fields.js';
import { monitorWhere } from './filters.js';
import { resolveSort } from './keyset.js';
import { page } from './pages.js';
import type { Database, MonitorsTable } from './schema.js';

type Db = Kysely<Database>;

type MonitorRow = Selectable<MonitorsTable>;

function monitorFromRow(row: MonitorRow): LeasedMonitor {
  return {
    id: Number(row.id),
    customer_id: Number(row.customer_id),
    type: 'http',
    topics: JSON.parse(row.topics) as EventTopic[],
    url: row.url,
    method: row.method as Monitor['method'],
    format: row.format as Monitor['format'],
    auth_token: row.auth_token,
    headers: JSON.parse(row.headers) as string[],
    batch_size: row.batch_size,
    batch_duration: row.batch_duration,
    compression: row.compression as Monitor['compression'],
    persistent: Number(row.persistent) === 1,
    secret: row.secret,
    description: row.description,
    status: row.status as MonitorStatus,
    last_sent: row.last_sent === null ? null : Number(row.last_sent),
    last_sent_uuid: row.last_sent_uuid,
    created_at: Number(row.created_at),
    cursor_id: Number(row.cursor_id),
    attempts: row.attempts,
    next_attempt_at: row.next_attempt_at === null ? null : Number(row.next_attempt_at),
    failing_since: row.failing_since === null ? null : Number(row.failing_since),
  };
}

/** A monitor as a client sees it: without the delivery state. */
function publicMonitor(row: MonitorRow): Monitor {
  const {
    cursor_id: _cursor,
    attempts: _attempts,
    next_attempt_at: _next,
    failing_since: _since,
    ...monitor
  } = monitorFromRow(row);
  return monitor;
}

const settingsColumns = (settings: Partial<MonitorSettings>) => {
  const { topics, headers, persistent, ...rest } = settings;
  return {
    ...rest,
    ...(topics === undefined ? {} : { topics: JSON.stringify(topics) }),
    ...(headers === undefined ? {} : { headers: JSON.stringify(headers) }),
    ...(persistent === undefined ? {} : { persistent: persistent ? 1 : 0 }),
  };
};

/** Events already written when the monitor is created are not sent to it: it starts after them. */
export async function createMonitor(
  db: Db,
  accountId: number,
  settings: MonitorSettings,
  now: Millis,
): Promise<Monitor> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('monitors')
      .values({
        ...settings,
        topics: JSON.stringify(settings.topics),
        headers: JSON.stringify(settings.headers),
        persistent: settings.persistent ? 1 : 0,
        customer_id: accountId,
        status: 'active',
        last_sent: null,
        last_sent_uuid: null,
        created_at: now,
        cursor_id: await lastEventId(trx),
        next_attempt_at: null,
        failing_since: null,
        lease_owner: null,
        lease_until: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return publicMonitor(row);
  });
}

export async function getMonitor(db: Db, accountId: number, id: number): Promise<Monitor | undefined> {
  const row = await db
    .selectFrom('monitors')
    .selectAll()
    .where('customer_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row && publicMonitor(row);
}

export async function listMonitors(db: Db, dialect: SqlDialect, request: ListRequest): Promise<Monitor[]> {
  const sort = resolveSort(request.order, MONITOR_STORE_FIELDS, 'id', 'm');
  const own = db.selectFrom('monitors as m').selectAll('m').where('m.customer_id', '=', request.accountId);
  const query = request.query === null ? own : own.where(monitorWhere(request.query, dialect.id, Date.now()));
  return (await page(query, sort, request.after, request.limit).execute()).map(publicMonitor);
}

export async function updateMonitor(
  db: Db,
  accountId: number,
  id: number,
  patch: MonitorPatch,
  now: Millis,
): Promise<Monitor | undefined> {
  const { status, ...settings } = patch;
  // Resuming starts afresh: no failures counted, the waiting batch is sent at once.
  const resume = status === 'active' ? { attempts: 0, next_attempt_at: now, failing_since: null } : {};
  const row = await db
    .updateTable('monitors')
    .set({ ...settingsColumns(settings), ...(status === undefined ? {} : { status }), ...resume })
    .where('customer_id', '=', accountId)
    .where('id', '=', id)
    .returningAll()
    .executeTakeFirst();
  return row && publicMonitor(row);
}

export async function deleteMonitor(db: Db, accountId: number, id: number): Promise<boolean> {
  const result = await db
    .deleteFrom('monitors')
    .where('customer_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return result.numDeletedRows > 0n;
}

/** One guarded UPDATE: a lease changes hands only when it is free, expired or the taker's own. */
export async function leaseMonitors(
  db: Db,
  owner: string,
  now: Millis,
  leaseMs: number,
): Promise<LeasedMonitor[]> {
  const rows = await db
    .updateTable('monitors')
    .set({ lease_owner: owner, lease_until: now + leaseMs })
    .where('status', '=', 'active')
    .where((eb) =>
      eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
    )
    .returningAll()
    .execute();
  return rows.map(monitorFromRow).sort((a, b) => a.id - b.id);
}

export async function saveDelivery(
  db: Db,
  id: number,
  owner: string,
  state: DeliveryState,
): Promise<boolean> {
  const { disable, ...delivery } = state;
  const result = await db
    .updateTable('monitors')
    .set({
      ...delivery,
      ...(disable
        ? { status: sql<string>`case when status = 'active' then 'disabled' else status end` }
        : {}),
    })
    .where('id', '=', id)
    .where('lease_owner', '=', owner)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}
