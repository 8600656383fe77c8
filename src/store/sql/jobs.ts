import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { foldAscii } from '../../model/device.js';
import { badRequest } from '../../model/error.js';
import {
  isFinishedJob,
  type Job,
  type JobDetail,
  type JobStatus,
  type JobTarget,
  type Millis,
} from '../../model/job.js';
import type { Query } from '../../query/index.js';
import type {
  ByIdResult,
  ByQueryResult,
  CancelNotice,
  CancelResult,
  CsvRecords,
  CsvRequest,
  DeviceSelection,
  JsonPage,
  JsonPageRequest,
  ListRequest,
  NewJob,
  StreamRequest,
} from '../store.js';
import { EndedTargets, FINISHED_ROLLOUT_STATE } from './counts.js';
import type { CsvReader, JsonReader, Reader, SqlDialect } from './dialect.js';
import { jobChanges, recordEvents, targetChanges } from './events.js';
import { JOB_STORE_FIELDS, TARGET_STORE_FIELDS } from './fields.js';
import { deviceWhere, jobWhere, targetWhere } from './filters.js';
import { resolveSort } from './keyset.js';
import { csvPages, jsonPage, page, streamPages } from './pages.js';
import { isPending } from './pending.js';
import { noTarget } from './preview.js';
import { controlColumns } from './rollout.js';
import {
  JOB_COLUMNS,
  JOB_DETAIL_COLUMNS,
  jobDetailFromRow,
  jobFromRow,
  TARGET_COLUMNS,
  type TargetRow,
  targetFromRow,
} from './rows.js';
import type { Database } from './schema.js';

type Db = Kysely<Database>;

const UNKNOWN_IDS_SHOWN = 10;

// ---- creation ----

/**
 * The devices (`devices d`) a selection names: the union of its ids, its groups with their
 * subgroups, its tags and its query. Groups and tags compare case-insensitively, as in queries.
 */
export function selectionWhere(
  dialect: SqlDialect,
  selection: DeviceSelection,
  now: Millis,
): RawBuilder<SqlBool> {
  if (selection.all) return sql<SqlBool>`true`;
  const parts: RawBuilder<SqlBool>[] = [];
  if (selection.devices.length > 0) parts.push(dialect.inTexts(sql.ref('d.id'), selection.devices));
  for (const group of selection.groups) {
    const path = foldAscii(group);
    // `/a` itself, or a path in ['/a/', '/a0'): exactly the paths below `/a/` ('0' follows '/').
    parts.push(
      sql`(lower(d.group_path) = ${path} or (lower(d.group_path) >= ${`${path}/`} and lower(d.group_path) < ${`${path}0`}))`,
    );
  }
  if (selection.tags.length > 0) {
    parts.push(
      sql`d.pk in (select device_pk from device_tags where ${dialect.inTexts(sql`lower(tag)`, selection.tags.map(foldAscii))})`,
    );
  }
  if (selection.query !== null) parts.push(deviceWhere(selection.query, dialect.id, now));
  return parts.length === 0 ? sql<SqlBool>`false` : sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
}

/**
 * Targets a statement of createJob adds (and ids checkDevicesKnown looks up) at most. SQLite runs
 * each statement on the event loop: a job of 100,000 devices was one statement of 153 ms there
 * (bench/create-job.ts), every request and MQTT message waiting meanwhile; in slices of 10,000 the
 * loop runs between them (what uses the store's one connection waits for the transaction still).
 */
export const CREATE_SLICE = 10_000;

export async function checkDevicesKnown(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  ids: string[],
): Promise<void> {
  const unknown: string[] = [];
  // CREATE_SLICE ids a statement, the event loop free in between.
  for (let start = 0; start < ids.length && unknown.length <= UNKNOWN_IDS_SHOWN; start += CREATE_SLICE) {
    if (start > 0) await yieldToEventLoop();
    const { rows } = await sql<{ id: string }>`select wanted.value as id
      from ${dialect.textTable(ids.slice(start, start + CREATE_SLICE), 'wanted')}
      where not exists (select 1 from devices d where d.id = wanted.value and d.customer_id = ${accountId})
      limit ${UNKNOWN_IDS_SHOWN + 1 - unknown.length}`.execute(db);
    unknown.push(...rows.map((row) => row.id));
  }
  const [first, ...more] = unknown.map((id) => `'${id}'`);
  if (first === undefined) return;
  if (more.length === 0) throw badRequest(`Unknown device id ${first} in targets.devices`);
  const shown = [first, ...more].slice(0, UNKNOWN_IDS_SHOWN).join(', ');
  throw badRequest(
    `Unknown device ids in targets.devices: ${shown}${more.length >= UNKNOWN_IDS_SHOWN ? ', …' : ''}`,
  );
}

/**
 * Adds the targets of job `jobId`, the devices `job` selects, CREATE_SLICE at most a statement, in
 * key order (so the rows append to job_targets' b-tree instead of scattering over it). Devices
 * named alone by id are sliced by their ids (each statement finds its own); any other selection
 * by the key of the last device added. Returns how many.
 */
async function insertTargets(trx: Db, dialect: SqlDialect, jobId: number, job: NewJob): Promise<number> {
  const insert = async (where: RawBuilder<SqlBool>, limit: RawBuilder<unknown>) => {
    const inserted = await sql`insert into job_targets (job_id, device_id, device_pk, queued_time, deadline)
      select cast(${jobId} as bigint), d.id, d.pk, cast(${job.now} as bigint),
        cast(${job.now + job.offline_timeout * 1000} as bigint)
      from devices d where d.customer_id = ${job.accountId} and ${where}
      order by d.id ${limit}`.execute(trx);
    return Number(inserted.numAffectedRows ?? 0n);
  };
  const { selection } = job;
  let count = 0;
  if (
    !selection.all &&
    selection.groups.length === 0 &&
    selection.tags.length === 0 &&
    selection.query === null
  ) {
    const ids = [...new Set(selection.devices)].sort();
    for (let start = 0; start < ids.length; start += CREATE_SLICE) {
      if (start > 0) await yieldToEventLoop();
      count += await insert(dialect.inTexts(sql.ref('d.id'), ids.slice(start, start + CREATE_SLICE)), sql``);
    }
    return count;
  }
  const where = selectionWhere(dialect, selection, job.now);
  for (let after = ''; ; ) {
    const added = await insert(sql<SqlBool>`${where} and d.id > ${after}`, sql`limit ${CREATE_SLICE}`);
    count += added;
    if (added < CREATE_SLICE) return count;
    const { last } = await trx
      .selectFrom('job_targets')
      .select((eb) => eb.fn.max('device_id').as('last'))
      .where('job_id', '=', jobId)
      .executeTakeFirstOrThrow();
    after = last;
    await yieldToEventLoop();
  }
}

export async function createJob(db: Db, dialect: SqlDialect, job: NewJob): Promise<JobDetail> {
  return db.transaction().execute(async (trx) => {
    await checkDevicesKnown(trx, dialect, job.accountId, job.selection.devices);
    const { id } = await trx
      .insertInto('jobs')
      .values({
        customer_id: job.accountId,
        username: job.username,
        job_type: job.job_type,
        job_status: 'new',
        description: job.description,
        job_submit_time: job.now,
        job_completion_time: null,
        target_count: 0,
        payload: job.payload === null ? null : JSON.stringify(job.payload),
        timeout: job.timeout,
        offline_timeout: job.offline_timeout,
        targets: JSON.stringify(job.targets),
        ...controlColumns(job.controls, job.rollout_state),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const count = await insertTargets(trx, dialect, id, job);
    if (count === 0) throw noTarget();
    await trx
      .updateTable('jobs')
      .set({ target_count: count, progress_pending: count })
      .where('id', '=', id)
      .execute();
    const created = (await getJob(trx, job.accountId, id)) as JobDetail;
    await recordEvents(trx, dialect, job.now, jobChanges('INSERTION', [created]));
    return created;
  });
}

export async function failDisconnectedTargets(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  jobId: number,
  message: string,
  now: Millis,
): Promise<string[]> {
  return db.transaction().execute(async (trx) => {
    const failed = await trx
      .updateTable('job_targets')
      .set({ status: 'failed', message, end_time: now, deadline: null })
      .where('job_id', '=', jobId)
      .where(sql<SqlBool>`status = 'queued'`)
      .where(
        sql<SqlBool>`exists (select 1 from devices d where d.pk = job_targets.device_pk
          and d.customer_id = ${accountId} and d.connection_status = 'disconnected')`,
      )
      .returning(TARGET_COLUMNS)
      .execute();
    const jobs = await new EndedTargets().addAll(failed).count(trx, dialect, now);
    await recordEvents(trx, dialect, now, [
      ...targetChanges(failed.map(targetFromRow)),
      ...jobChanges('UPDATE', jobs),
    ]);
    return failed.map((row) => row.device_id);
  });
}

// ---- reading ----

export async function getJob(db: Db, accountId: number, id: number): Promise<JobDetail | undefined> {
  const row = await db
    .selectFrom('jobs')
    .select(JOB_DETAIL_COLUMNS)
    .where('customer_id', '=', accountId)
    .where('id', '=', id)
    .executeTakeFirst();
  return row && jobDetailFromRow(row);
}

async function jobsQuery(db: Db, dialect: SqlDialect, accountId: number, query: Query | null, now: Millis) {
  const base = db
    .selectFrom('jobs as j')
    .select(JOB_COLUMNS.map((column) => `j.${column}` as const))
    .where('j.customer_id', '=', accountId);
  return query === null ? base : base.where(await jobWhere(db, query, dialect, accountId, now));
}

export async function listJobs(db: Db, dialect: SqlDialect, request: ListRequest): Promise<Job[]> {
  const sort = resolveSort(request.order, JOB_STORE_FIELDS, 'id', 'j');
  const query = await jobsQuery(db, dialect, request.accountId, request.query, Date.now());
  return (await page(query, sort, request.after, request.limit).execute()).map(jobFromRow);
}

export async function listJobsJson(
  db: Db,
  dialect: SqlDialect,
  reader: JsonReader,
  request: JsonPageRequest,
): Promise<JsonPage> {
  const sort = resolveSort(request.order, JOB_STORE_FIELDS, 'id', 'j');
  const query = await jobsQuery(db, dialect, request.accountId, request.query, Date.now());
  return jsonPage(reader, query, 'j', sort, request, JOB_STORE_FIELDS);
}

export async function* exportJobs(
  db: Db,
  dialect: SqlDialect,
  reader: CsvReader,
  request: CsvRequest,
): CsvRecords {
  const sort = resolveSort(request.order, JOB_STORE_FIELDS, 'id', 'j');
  yield* csvPages(
    reader,
    await jobsQuery(db, dialect, request.accountId, request.query, Date.now()),
    'j',
    sort,
    request,
    JOB_STORE_FIELDS,
  );
}

async function jobExists(db: Db, accountId: number, jobId: number): Promise<boolean> {
  const row = await db
    .selectFrom('jobs')
    .select('id')
    .where('customer_id', '=', accountId)
    .where('id', '=', jobId)
    .executeTakeFirst();
  return row !== undefined;
}

/** The targets of a job of this account, each with its device if it still exists. */
function targetsQuery(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  jobId: number,
  query: Query | null,
  now: Millis,
) {
  const base = db
    .selectFrom('job_targets as t')
    .innerJoin('jobs as j', 'j.id', 't.job_id')
    .leftJoin('devices as d', 'd.pk', 't.device_pk')
    .select(TARGET_COLUMNS.map((column) => `t.${column}` as const))
    .where('t.job_id', '=', jobId)
    .where('j.customer_id', '=', accountId);
  return query === null ? base : base.where(targetWhere(query, dialect.id, now));
}

export async function listTargets(
  db: Db,
  dialect: SqlDialect,
  jobId: number,
  request: ListRequest,
): Promise<JobTarget[] | undefined> {
  const sort = resolveSort(request.order, TARGET_STORE_FIELDS, 'device_id', 't');
  if (!(await jobExists(db, request.accountId, jobId))) return undefined;
  const query = targetsQuery(db, dialect, request.accountId, jobId, request.query, Date.now());
  return (await page(query, sort, request.after, request.limit).execute()).map(targetFromRow);
}

/** Nothing when the job does not exist in this account. */
export async function* streamTargets(
  db: Db,
  dialect: SqlDialect,
  reader: Reader,
  jobId: number,
  request: StreamRequest,
): AsyncGenerator<JobTarget[]> {
  const sort = resolveSort(request.order, TARGET_STORE_FIELDS, 'device_id', 't');
  if (!(await jobExists(db, request.accountId, jobId))) return;
  yield* streamPages(
    reader,
    targetsQuery(db, dialect, request.accountId, jobId, request.query, Date.now()),
    sort,
    targetFromRow,
  );
}

const TARGET_JSON: ReadonlySet<string> = new Set(['response']);

/** Nothing when the job does not exist in this account. */
export async function* exportTargets(
  db: Db,
  dialect: SqlDialect,
  reader: CsvReader,
  jobId: number,
  request: CsvRequest,
): CsvRecords {
  const sort = resolveSort(request.order, TARGET_STORE_FIELDS, 'device_id', 't');
  if (!(await jobExists(db, request.accountId, jobId))) return;
  yield* csvPages(
    reader,
    targetsQuery(db, dialect, request.accountId, jobId, request.query, Date.now()),
    't',
    sort,
    request,
    TARGET_STORE_FIELDS,
    TARGET_JSON,
  );
}

// ---- cancel and delete ----

export interface Candidate {
  id: number;
  job_status: JobStatus;
  /** Whether the job has an in-progress target (1/0 or true/false, by engine). */
  in_progress: number | boolean;
}

/** The account's jobs that `where` selects, with what cancel and delete need to know of them. */
export async function candidates(
  db: Db,
  accountId: number,
  where: RawBuilder<SqlBool>,
  limit?: number,
): Promise<Candidate[]> {
  // `offset 0` keeps PostgreSQL from hashing every in-progress target of the store to answer
  // `exists` for a slice (a seq scan of job_targets per slice: 0.7 s each at 100,000 targets);
  // it probes the index for each job instead (26 ms for 1,000 jobs).
  const { rows } = await sql<Candidate>`select j.id, j.job_status,
      exists (select 1 from job_targets t where t.job_id = j.id and t.status = 'in_progress'
        limit 1 offset 0) as in_progress
    from jobs j where j.customer_id = ${accountId} and ${where} order by j.id
    ${limit === undefined ? sql`` : sql`limit ${limit}`}`.execute(db);
  return rows;
}

/**
 * A by-query change runs in slices that each keep the event loop busy for about SLICE_MS (it waits
 * for no longer than that): the slice size adapts to the last one's busy time, within these
 * bounds. Busy, not elapsed: on PostgreSQL a slice mostly waits for its round trips, with the
 * event loop free, and sizing by elapsed time shrank slices to the minimum on a loaded machine
 * (20,000 jobs: 1,119 slices of 9 statements).
 */
const SLICE_MS = 40;
const SLICE_JOBS = { first: 100, min: 10, max: 1_000 };

/**
 * Applies `change` to the jobs `where` selects, in id order, one slice per transaction, letting
 * the event loop (other requests, MQTT) run between slices, and the engine catch up with the writes
 * (`caughtUp`: SQLite's WAL checkpointed). Each slice re-reads its jobs inside its
 * transaction, so every job is changed entirely or not at all, and counted once. Returns how many
 * jobs matched.
 */
async function inSlices(
  db: Db,
  accountId: number,
  where: RawBuilder<SqlBool>,
  change: (trx: Db, slice: Candidate[]) => Promise<void>,
  caughtUp: () => Promise<void>,
): Promise<number> {
  let afterId = 0;
  let matched = 0;
  let size = SLICE_JOBS.first;
  for (;;) {
    const started = performance.eventLoopUtilization();
    const slice = await db.transaction().execute(async (trx) => {
      const jobs = await candidates(trx, accountId, sql<SqlBool>`(${where}) and j.id > ${afterId}`, size);
      await change(trx, jobs);
      return jobs;
    });
    matched += slice.length;
    const last = slice.at(-1);
    if (slice.length < size || last === undefined) return matched;
    afterId = last.id;
    const took = Math.max(performance.eventLoopUtilization(started).active, 1);
    size = Math.round(Math.min(SLICE_JOBS.max, Math.max(SLICE_JOBS.min, (size * SLICE_MS) / took)));
    await yieldToEventLoop();
    await caughtUp();
  }
}

export const byIds = (dialect: SqlDialect, ids: number[]) => dialect.inIntegers(sql.ref('j.id'), ids);

/** A cancel changes a job that is not finished, and with `force` a canceled one with in-progress targets. */
const cancelable = (job: Candidate, force: boolean) =>
  !isFinishedJob(job.job_status) || (force && job.job_status === 'canceled' && Boolean(job.in_progress));

/**
 * Targets a statement of a cancel ends at most, with their events: ~50 ms of the event loop on
 * SQLite. A job of 100,000 queued targets was canceled by one statement and one insert of events,
 * 2.1-2.4 s of it (bench/create-job.ts).
 */
export const CANCEL_SLICE = 2_000;

/**
 * Cancels the targets of `jobIds` whose status is `status` (and sets `also`), CANCEL_SLICE a
 * statement in key order, each slice's events written after it, the event loop free in between.
 * Returns them.
 */
async function cancelInSlices(
  db: Db,
  dialect: SqlDialect,
  jobIds: number[],
  status: 'queued' | 'in_progress',
  also: { cancel_requested?: number },
  now: Millis,
): Promise<TargetRow[]> {
  const canceled: TargetRow[] = [];
  for (;;) {
    // A canceled target leaves `status`: the next slice starts after it.
    const slice = await db
      .updateTable('job_targets')
      .set({ status: 'canceled', end_time: now, deadline: null, ...also })
      .where(
        sql<SqlBool>`(job_id, device_id) in (select job_id, device_id from job_targets
          where ${dialect.inIntegers(sql.ref('job_id'), jobIds)} and status = ${status}
          order by job_id, device_id limit ${CANCEL_SLICE})`,
      )
      .where('status', '=', status)
      .returning(TARGET_COLUMNS)
      .execute();
    await recordEvents(db, dialect, now, targetChanges(slice.map(targetFromRow)));
    for (const row of slice) canceled.push(row);
    if (slice.length < CANCEL_SLICE) return canceled;
    await yieldToEventLoop();
  }
}

/**
 * Cancels the given cancelable jobs: unfinished ones become `canceled` and their queued targets
 * too; their in-progress targets get a cancel request (with `force`, they are canceled at once,
 * also those of jobs canceled before). Returns the devices to tell.
 */
export async function cancel(
  db: Db,
  dialect: SqlDialect,
  jobs: Candidate[],
  force: boolean,
  now: Millis,
): Promise<CancelNotice[]> {
  if (jobs.length === 0) return [];
  const all = jobs.map((job) => job.id);
  const unfinished = jobs.filter((job) => !isFinishedJob(job.job_status)).map((job) => job.id);
  // Locks the pending targets first, in key order as every multi-target change does: the two
  // updates below then wait for nobody, and cannot deadlock with another writer.
  // Counted, not read: 100,000 rows read back cost SQLite's event loop ~30 ms more.
  const { locked } = await db
    .selectFrom(
      db
        .selectFrom('job_targets as t')
        .select('t.job_id')
        .where(dialect.inIntegers(sql.ref('t.job_id'), all))
        .where(isPending('t.status'))
        .orderBy('t.job_id')
        .orderBy('t.device_id')
        .modifyEnd(dialect.lockRows('t'))
        .as('pending'),
    )
    .select((eb) => eb.fn.countAll().as('locked'))
    .executeTakeFirstOrThrow();
  if (Number(locked) > CANCEL_SLICE) await yieldToEventLoop();
  const canceled = await cancelInSlices(db, dialect, unfinished, 'queued', {}, now);
  const told = force
    ? await cancelInSlices(db, dialect, all, 'in_progress', { cancel_requested: 1 }, now)
    : await db
        .updateTable('job_targets')
        .set({ cancel_requested: 1 })
        .where(dialect.inIntegers(sql.ref('job_id'), unfinished))
        .where('status', '=', 'in_progress')
        .returning(TARGET_COLUMNS)
        .execute();
  if (!force) await recordEvents(db, dialect, now, targetChanges(told.map(targetFromRow)));
  if (canceled.length + told.length > CANCEL_SLICE) await yieldToEventLoop();
  const jobsCanceled = await db
    .updateTable('jobs')
    .set({ job_status: 'canceled', job_completion_time: now, rollout_state: FINISHED_ROLLOUT_STATE })
    .where(dialect.inIntegers(sql.ref('id'), unfinished))
    .where('job_status', 'in', ['new', 'in_progress'])
    .returning(JOB_COLUMNS)
    .execute();
  const ended = new EndedTargets().addAll(canceled);
  if (force) ended.addAll(told);
  const counted = await ended.count(db, dialect, now);
  await recordEvents(db, dialect, now, jobChanges('UPDATE', [...jobsCanceled.map(jobFromRow), ...counted]));
  return told.map(({ job_id, device_id }) => ({ job_id, device_id, force }));
}

async function jobsByIds(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  ids: number[],
): Promise<Map<number, Job>> {
  if (ids.length === 0) return new Map();
  const rows = await db
    .selectFrom('jobs')
    .select(JOB_COLUMNS)
    .where('customer_id', '=', accountId)
    .where(dialect.inIntegers(sql.ref('id'), ids))
    .execute();
  return new Map(rows.map((row) => [row.id, jobFromRow(row)]));
}

const jobNotFound = (id: number) => ({ id, ok: false as const, status: 404, message: `Job ${id} not found` });

export async function cancelJobs(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  ids: number[],
  force: boolean,
  now: Millis,
): Promise<CancelResult> {
  const unique = [...new Set(ids)];
  return db.transaction().execute(async (trx) => {
    const found = new Map(
      (await candidates(trx, accountId, byIds(dialect, unique))).map((job) => [job.id, job]),
    );
    const changing = [...found.values()].filter((job) => cancelable(job, force));
    const notices = await cancel(trx, dialect, changing, force, now);
    const after = await jobsByIds(
      trx,
      dialect,
      accountId,
      changing.map((job) => job.id),
    );
    const results = unique.map((id): ByIdResult<Job> => {
      const job = after.get(id);
      if (job) return { id, ok: true, value: job };
      const candidate = found.get(id);
      if (!candidate) return jobNotFound(id);
      return { id, ok: false, status: 409, message: `Job ${id} is already ${candidate.job_status}` };
    });
    return { results, notices };
  });
}

export async function cancelJobsByQuery(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  query: Query,
  force: boolean,
  now: Millis,
  caughtUp: () => Promise<void>,
): Promise<ByQueryResult & { notices: CancelNotice[] }> {
  const where = await jobWhere(db, query, dialect, accountId, now);
  let count = 0;
  const notices: CancelNotice[] = [];
  const matched = await inSlices(
    db,
    accountId,
    where,
    async (trx, slice) => {
      const changing = slice.filter((job) => cancelable(job, force));
      notices.push(...(await cancel(trx, dialect, changing, force, now)));
      count += changing.length;
    },
    caughtUp,
  );
  return { count, skipped: matched - count, notices };
}

/**
 * Deletes the finished jobs of `ids` (guarded: a job that is not finished, any more, stays). Their
 * targets go first, CREATE_SLICE a statement, the event loop free in between: deleted with their
 * job (ON DELETE CASCADE), a job's 100,000 targets held SQLite's event loop 216 ms.
 */
async function deleteByIds(db: Db, dialect: SqlDialect, ids: number[]): Promise<void> {
  if (ids.length === 0) return;
  const finished = sql`select id from jobs where ${dialect.inIntegers(sql.ref('id'), ids)}
    and job_status in ('complete', 'failed', 'canceled')`;
  for (;;) {
    const { numDeletedRows } = await db
      .deleteFrom('job_targets')
      .where(
        sql<SqlBool>`(job_id, device_id) in (select job_id, device_id from job_targets
          where job_id in (${finished}) limit ${CREATE_SLICE})`,
      )
      .executeTakeFirst();
    if (Number(numDeletedRows) < CREATE_SLICE) break;
    await yieldToEventLoop();
  }
  const deleted = await db
    .deleteFrom('jobs')
    .where(dialect.inIntegers(sql.ref('id'), ids))
    .where('job_status', 'in', ['complete', 'failed', 'canceled'])
    .returning(JOB_COLUMNS)
    .execute();
  await recordEvents(db, dialect, Date.now(), jobChanges('DELETION', deleted.map(jobFromRow)));
}

export async function deleteJobs(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  ids: number[],
): Promise<ByIdResult<number>[]> {
  const unique = [...new Set(ids)];
  return db.transaction().execute(async (trx) => {
    const found = new Map(
      (await candidates(trx, accountId, byIds(dialect, unique))).map((job) => [job.id, job]),
    );
    const results = unique.map((id): ByIdResult<number> => {
      const job = found.get(id);
      if (!job) return jobNotFound(id);
      if (!isFinishedJob(job.job_status)) {
        return { id, ok: false, status: 409, message: `Job ${id} is ${job.job_status}: cancel it first` };
      }
      return { id, ok: true, value: id };
    });
    await deleteByIds(
      trx,
      dialect,
      results.filter((result) => result.ok).map((result) => result.id),
    );
    return results;
  });
}

export async function deleteJobsByQuery(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  query: Query,
  caughtUp: () => Promise<void>,
): Promise<ByQueryResult> {
  const where = await jobWhere(db, query, dialect, accountId, Date.now());
  let count = 0;
  const matched = await inSlices(
    db,
    accountId,
    where,
    async (trx, slice) => {
      const finished = slice.filter((job) => isFinishedJob(job.job_status)).map((job) => job.id);
      await deleteByIds(trx, dialect, finished);
      count += finished.length;
    },
    caughtUp,
  );
  return { count, skipped: matched - count };
}
