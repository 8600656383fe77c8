import { randomUUID } from 'node:crypto';
import { type Kysely, type RawBuilder, type Selectable, sql } from 'kysely';
import type { Device } from '../../model/device.js';
import type { EventOperation, EventTopic, StoredEvent } from '../../model/event.js';
import { JOB_LIST_FIELDS, type Job, type JobTarget, type Millis } from '../../model/job.js';
import type { EventRequest } from '../store.js';
import type { SqlDialect } from './dialect.js';
import { JOB_COLUMNS, jobFromRow, TARGET_COLUMNS, targetFromRow } from './rows.js';
import type { Database, EventsTable } from './schema.js';

/**
 * The outbox (CONTRACT §10): every change of a job, a target or a device is written as an event
 * row by the transaction that makes it, carrying the object as it was right after the change.
 * A state change collects its changes and calls `recordEvents` once, as its last write: the ids
 * come from the one `event_sequence` row, whose lock the transaction then holds until it commits,
 * so ids increase in commit order on every engine and a reader reading after the last id it saw
 * never misses an event that commits later.
 */

type Db = Kysely<Database>;

/** One object changed by a transaction, as it is right after the change. */
export type Change =
  | { topic: 'jobs'; operation: EventOperation; object: Job }
  | { topic: 'job_targets'; operation: 'UPDATE'; object: JobTarget }
  | { topic: 'devices'; operation: EventOperation; object: Device };

/** The job as lists show it, whatever else the row read had. */
const listedJob = (job: Job): Job =>
  Object.fromEntries(JOB_LIST_FIELDS.map((field) => [field, job[field]])) as unknown as Job;

export const jobChanges = (operation: EventOperation, jobs: readonly Job[]): Change[] =>
  jobs.map((job) => ({ topic: 'jobs', operation, object: listedJob(job) }));

export const targetChanges = (targets: readonly JobTarget[]): Change[] =>
  targets.map((target) => ({ topic: 'job_targets', operation: 'UPDATE', object: target }));

export const deviceChanges = (operation: EventOperation, devices: readonly Device[]): Change[] =>
  devices.map((device) => ({ topic: 'devices', operation, object: device }));

const objectKey = (change: Change): string => {
  switch (change.topic) {
    case 'jobs':
      return String(change.object.id);
    case 'job_targets':
      return `${change.object.job_id}/${change.object.device_id}`;
    case 'devices':
      return change.object.id;
  }
};

/**
 * One event per object: a transaction that changed an object twice records it once, as it is at
 * commit; created in this transaction it stays an INSERTION, deleted it is a DELETION.
 */
function merge(changes: readonly Change[]): Map<string, Change> {
  const merged = new Map<string, Change>();
  for (const change of changes) {
    const key = `${change.topic} ${objectKey(change)}`;
    const before = merged.get(key);
    const operation =
      before?.operation === 'INSERTION' && change.operation === 'UPDATE' ? 'INSERTION' : change.operation;
    merged.set(key, { ...change, operation } as Change);
  }
  return merged;
}

const EVENT_COLUMNS = [
  'id',
  'uuid',
  'customer_id',
  'topic',
  'object_key',
  'job_id',
  'operation',
  'time',
  'data',
] as const;

/**
 * Writes the events of `changes`, after taking their ids. Call it last in the transaction of the
 * change (a change made in slices: after each slice's write). A target's account is its job's. Where a statement can write in its WITH (PostgreSQL),
 * the ids are taken by the statement that writes the events: the sequence's lock is then held from
 * that one statement to the commit, not across another round trip too. Under bench/load.ts's mix on
 * PostgreSQL every transaction that wrote events waited 28 ms on average for that lock.
 */
export async function recordEvents(
  trx: Db,
  dialect: SqlDialect,
  now: Millis,
  changes: readonly Change[],
): Promise<void> {
  const merged = [...merge(changes)];
  if (merged.length === 0) return;
  // Each row's id is its place among them (from 1), made an event id by the statement.
  const rows = merged.map(([key, change], index) => ({
    id: index + 1,
    uuid: randomUUID(),
    customer_id: change.topic === 'job_targets' ? null : change.object.customer_id,
    topic: change.topic,
    object_key: key.slice(change.topic.length + 1),
    job_id:
      change.topic === 'jobs'
        ? change.object.id
        : change.topic === 'job_targets'
          ? change.object.job_id
          : null,
    operation: change.operation,
    time: now,
    data: JSON.stringify(change.object),
  }));
  // An upsert: the row exists after the first event, whatever emptied the table before.
  const takeIds = sql`insert into event_sequence (id, last_id) values (1, ${merged.length})
    on conflict (id) do update set last_id = event_sequence.last_id + ${merged.length}
    returning last_id`;
  const insert = (lastId: RawBuilder<unknown>, from: RawBuilder<unknown>) =>
    sql`insert into events (${sql.join(EVENT_COLUMNS.map((column) => sql.ref(column)))})
      select ${sql.join(
        EVENT_COLUMNS.map((column) =>
          column === 'id'
            ? sql`e.id + ${lastId} - ${merged.length}`
            : column === 'customer_id'
              ? sql`coalesce(e.customer_id, (select j.customer_id from jobs j where j.id = e.job_id))`
              : sql.ref(`e.${column}`),
        ),
      )}
      from ${from}(${dialect.jsonRecords('events', EVENT_COLUMNS, JSON.stringify(rows))}) e`;
  if (dialect.writesInWith) {
    await sql`with taken as (${takeIds}) ${insert(sql`taken.last_id`, sql`taken, `)}`.execute(trx);
    return;
  }
  const { rows: taken } = await takeIds.$castTo<{ last_id: number }>().execute(trx);
  await insert(sql`${Number(taken[0]?.last_id)}`, sql``).execute(trx);
}

/**
 * Records the events of the jobs `jobIds` and of the targets `targets` as they are now, read again:
 * for a change whose later steps (a retry queuing a target again, an abort rule pausing its job)
 * moved them on after the statement that returned them. Answers those jobs.
 */
export async function recordCurrent(
  trx: Db,
  dialect: SqlDialect,
  now: Millis,
  jobIds: readonly number[],
  targets: readonly { job_id: number; device_id: string }[],
): Promise<Job[]> {
  const wanted = new Set(targets.map((target) => `${target.job_id}/${target.device_id}`));
  const targetRows =
    targets.length === 0
      ? []
      : (
          await trx
            .selectFrom('job_targets')
            .select(TARGET_COLUMNS)
            .where(
              dialect.inIntegers(sql.ref('job_id'), [...new Set(targets.map((target) => target.job_id))]),
            )
            .where(
              dialect.inTexts(sql.ref('device_id'), [...new Set(targets.map((target) => target.device_id))]),
            )
            .execute()
        ).filter((row) => wanted.has(`${row.job_id}/${row.device_id}`));
  const jobRows =
    jobIds.length === 0
      ? []
      : await trx
          .selectFrom('jobs')
          .select(JOB_COLUMNS)
          .where(
            dialect.inIntegers(
              sql.ref('id'),
              [...jobIds].sort((a, b) => a - b),
            ),
          )
          .execute();
  const jobs = jobRows.map(jobFromRow);
  await recordEvents(trx, dialect, now, [
    ...targetChanges(targetRows.map(targetFromRow)),
    ...jobChanges('UPDATE', jobs),
  ]);
  return jobs;
}

const eventFromRow = (row: Selectable<EventsTable>): StoredEvent =>
  ({
    id: Number(row.id),
    uuid: row.uuid,
    customer_id: Number(row.customer_id),
    topic: row.topic as EventTopic,
    object_key: row.object_key,
    operation: row.operation as EventOperation,
    time: Number(row.time),
    data: JSON.parse(row.data),
  }) as StoredEvent;

/** The account's events after `afterId` (and within the request's bounds), in id order. */
export async function listEvents(db: Db, dialect: SqlDialect, request: EventRequest): Promise<StoredEvent[]> {
  const rows = await db
    .selectFrom('events')
    .selectAll()
    .where('customer_id', '=', request.accountId)
    .where('id', '>', request.afterId)
    .$if(request.topics !== undefined, (query) =>
      query.where(dialect.inTexts(sql.ref('topic'), request.topics ?? [])),
    )
    .$if(request.jobId !== undefined, (query) => query.where('job_id', '=', request.jobId ?? 0))
    .$if(request.from !== undefined, (query) => query.where('time', '>=', request.from ?? 0))
    .$if(request.until !== undefined, (query) => query.where('time', '<', request.until ?? 0))
    .orderBy('id')
    .limit(request.limit)
    .execute();
  return rows.map(eventFromRow);
}

/** The id of the last event committed: what a new monitor or stream starts after. */
export async function lastEventId(db: Db): Promise<number> {
  const row = await db.selectFrom('event_sequence').select('last_id').executeTakeFirst();
  return Number(row?.last_id ?? 0);
}

/** The event with this uuid, if the account still has it. */
export async function findEvent(db: Db, accountId: number, uuid: string): Promise<number | undefined> {
  const row = await db
    .selectFrom('events')
    .select('id')
    .where('customer_id', '=', accountId)
    .where('uuid', '=', uuid)
    .executeTakeFirst();
  return row === undefined ? undefined : Number(row.id);
}

/** Events examined per prune statement: old events are found from the oldest id on, without an index on time. */
const PRUNE_BATCH = 5000;

/**
 * Removes events older than `keepMs` (seven days), and those older than `streamMs` (an hour) of
 * accounts without a persistent monitor: nobody will read them. Ids grow with time, so the old
 * ones are the first ids: it goes through them from the oldest, PRUNE_BATCH at a time, without an
 * index on time, and stops at the first batch that reaches younger events.
 */
export async function pruneEvents(db: Db, now: Millis, keepMs: number, streamMs: number): Promise<number> {
  let removed = 0;
  let afterId = 0;
  for (;;) {
    const batch = await db
      .selectFrom('events')
      .select(['id', 'time'])
      .where('id', '>', afterId)
      .orderBy('id')
      .limit(PRUNE_BATCH)
      .execute();
    const last = batch.at(-1);
    if (last === undefined) return removed;
    const result = await db
      .deleteFrom('events')
      .where('id', '>', afterId)
      .where('id', '<=', last.id)
      .where((eb) =>
        eb.or([
          eb('time', '<', now - keepMs),
          eb.and([
            eb('time', '<', now - streamMs),
            eb(
              'customer_id',
              'not in',
              eb.selectFrom('monitors').select('customer_id').where('persistent', '=', 1),
            ),
          ]),
        ]),
      )
      .executeTakeFirst();
    removed += Number(result.numDeletedRows);
    if (Number(last.time) >= now - streamMs) return removed;
    afterId = Number(last.id);
  }
}
