import { type Kysely, sql, type Transaction } from 'kysely';
import type { ConnectionStatus } from '../../model/device.js';
import {
  isFinishedJob,
  isTerminalTarget,
  type JobStatus,
  type JobType,
  type Millis,
  progressBucket,
  settledJobStatus,
  type TargetStatus,
} from '../../model/job.js';
import type {
  CancelNotice,
  DeviceCredentials,
  DeviceState,
  OutgoingRequest,
  StatusUpdate,
} from '../store.js';
import { parseJson } from './rows.js';
import type { Database } from './schema.js';

/**
 * The DispatchStore half of the SQLite store: device sessions, target transitions and timeouts.
 * index.ts delegates each DispatchStore method to the function of the same name here, as
 * `fn(db, ...args)`.
 */

type Db = Kysely<Database>;
type Trx = Transaction<Database>;

const PENDING: TargetStatus[] = ['queued', 'in_progress'];

export async function findDeviceCredentials(db: Db, id: string): Promise<DeviceCredentials | undefined> {
  return db
    .selectFrom('devices')
    .select(['id', 'customer_id', 'token_hash'])
    .where('id', '=', id.toUpperCase())
    .executeTakeFirst();
}

export async function disconnectAll(db: Db, now: Millis): Promise<void> {
  await db
    .updateTable('devices')
    .set({ connection_status: 'disconnected', last_disconnect: now })
    .where('connection_status', '=', 'connected')
    .execute();
}

export async function setConnection(
  db: Db,
  deviceId: string,
  status: ConnectionStatus,
  now: Millis,
): Promise<boolean> {
  const query =
    status === 'connected'
      ? db
          .updateTable('devices')
          .set({ connection_status: 'connected', last_connect: now })
          .where('id', '=', deviceId)
      : db
          .updateTable('devices')
          .set({ connection_status: 'disconnected', last_disconnect: now })
          .where('id', '=', deviceId)
          .where('connection_status', '=', 'connected');
  const result = await query.executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function updateDeviceState(
  db: Db,
  deviceId: string,
  state: DeviceState,
  now: Millis,
): Promise<boolean> {
  const result = await db
    .updateTable('devices')
    .set({ ...state, last_update: now })
    .where('id', '=', deviceId)
    .executeTakeFirst();
  return result.numUpdatedRows > 0n;
}

export async function startNewJobs(db: Db): Promise<number[]> {
  const rows = await db
    .updateTable('jobs')
    .set({ job_status: 'in_progress' })
    .where('job_status', '=', 'new')
    .returning('id')
    .execute();
  return rows.map((row) => row.id);
}

interface RequestRow {
  job_id: number;
  device_id: string;
  status: string;
  job_type: string;
  payload: string | null;
  timeout: number;
}

const toRequest = (row: RequestRow): OutgoingRequest => ({
  job_id: row.job_id,
  device_id: row.device_id,
  job_type: row.job_type as JobType,
  payload: parseJson(row.payload),
  timeout: row.timeout,
});

/** Moves the queued ones of `rows` to in progress, in one statement: their requests are about to be published. */
async function startTargets(trx: Trx, rows: RequestRow[], now: Millis): Promise<void> {
  const queued = rows.filter((row) => row.status === 'queued').map((row) => [row.job_id, row.device_id]);
  if (queued.length === 0) return;
  await sql`update job_targets
    set status = 'in_progress', start_time = ${now},
        deadline = ${now} + (select j.timeout * 1000 from jobs j where j.id = job_targets.job_id)
    where status = 'queued' and (job_id, device_id) in
      (select value ->> 0, value ->> 1 from json_each(${JSON.stringify(queued)}))`.execute(trx);
}

const REQUEST_COLUMNS = [
  't.job_id',
  't.device_id',
  't.status',
  'j.job_type',
  'j.payload',
  'j.timeout',
] as const;

/** In one transaction: selects request rows, starts the queued ones, and returns their requests. */
function takeSelected(
  db: Db,
  now: Millis,
  select: (trx: Trx) => Promise<RequestRow[]>,
): Promise<OutgoingRequest[]> {
  return db.transaction().execute(async (trx) => {
    const rows = await select(trx);
    await startTargets(trx, rows, now);
    return rows.map(toRequest);
  });
}

export async function takeRequests(
  db: Db,
  deviceId: string,
  now: Millis,
  limit: number,
  afterJobId: number,
  resend = true,
): Promise<OutgoingRequest[]> {
  return takeSelected(db, now, (trx) =>
    trx
      .selectFrom('devices as d')
      .innerJoin('job_targets as t', 't.device_pk', 'd.pk')
      .innerJoin('jobs as j', 'j.id', 't.job_id')
      .select(REQUEST_COLUMNS)
      .where('d.id', '=', deviceId)
      .where('t.job_id', '>', afterJobId)
      .where('t.status', 'in', resend ? PENDING : ['queued'])
      .where('t.cancel_requested', '=', 0)
      .where('j.job_status', '=', 'in_progress')
      .orderBy('t.job_id')
      .limit(limit)
      .execute(),
  );
}

export async function takeJobRequests(
  db: Db,
  jobId: number,
  now: Millis,
  limit: number,
  afterDeviceId: string,
  skipDeviceIds: string[] = [],
): Promise<OutgoingRequest[]> {
  return takeSelected(db, now, (trx) =>
    trx
      .selectFrom('job_targets as t')
      .innerJoin('jobs as j', 'j.id', 't.job_id')
      .innerJoin('devices as d', 'd.pk', 't.device_pk')
      .select(REQUEST_COLUMNS)
      .where('t.job_id', '=', jobId)
      .where('t.device_id', '>', afterDeviceId)
      .$if(skipDeviceIds.length > 0, (query) =>
        query.where(
          sql<boolean>`t.device_id not in (select value from json_each(${JSON.stringify(skipDeviceIds)}))`,
        ),
      )
      .where('t.status', '=', 'queued')
      .where('j.job_status', '=', 'in_progress')
      .where('d.connection_status', '=', 'connected')
      .orderBy('t.device_id')
      .limit(limit)
      .execute(),
  );
}

export async function pendingCancels(db: Db, deviceId: string): Promise<CancelNotice[]> {
  const rows = await db
    .selectFrom('devices as d')
    .innerJoin('job_targets as t', 't.device_pk', 'd.pk')
    .select(['t.job_id', 't.device_id'])
    .where('d.id', '=', deviceId)
    .where('t.status', '=', 'in_progress')
    .where('t.cancel_requested', '=', 1)
    .orderBy('t.job_id')
    .execute();
  return rows.map((row) => ({ ...row, force: false }));
}

/** How many targets of each job ended, by the counter they now count in. */
type Ended = Map<number, Map<ReturnType<typeof progressBucket>, number>>;

const countEnded = (ended: Ended, jobId: number, status: TargetStatus) => {
  const buckets = ended.get(jobId) ?? new Map();
  const bucket = progressBucket(status);
  buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
  ended.set(jobId, buckets);
};

/**
 * Moves the ended targets out of each job's pending counter into their own, and settles a job that
 * was not canceled by a user once its last target ended: `failed` if every target failed, else
 * `complete`. Incremental, so a status costs the same whatever the size of its job.
 */
async function countTerminal(trx: Trx, ended: Ended, now: Millis): Promise<void> {
  for (const [jobId, buckets] of ended) {
    let total = 0;
    const deltas: Record<string, unknown> = {};
    for (const [bucket, count] of buckets) {
      total += count;
      deltas[bucket] = sql`${sql.ref(bucket)} + ${count}`;
    }
    const job = await trx
      .updateTable('jobs')
      .set({ ...deltas, progress_pending: sql`progress_pending - ${total}` })
      .where('id', '=', jobId)
      .returning(['job_status', 'target_count', 'progress_success', 'progress_failures', 'progress_pending'])
      .executeTakeFirst();
    if (!job || isFinishedJob(job.job_status as JobStatus)) continue;
    const settled = settledJobStatus(job);
    if (settled === null) continue;
    await trx
      .updateTable('jobs')
      .set({ job_status: settled, job_completion_time: now })
      .where('id', '=', jobId)
      .execute();
  }
}

/** Applies one report to its target; a terminal one is counted in `ended`. */
async function applyStatus(
  trx: Trx,
  { device_id, job_id, report }: StatusUpdate,
  now: Millis,
  ended: Ended,
): Promise<boolean> {
  const target = await trx
    .selectFrom('job_targets as t')
    .innerJoin('devices as d', 'd.pk', 't.device_pk')
    .innerJoin('jobs as j', 'j.id', 't.job_id')
    .select(['t.status', 't.progress', 't.message', 't.response', 't.start_time', 'j.timeout'])
    .where('t.job_id', '=', job_id)
    .where('t.device_id', '=', device_id)
    .where('d.id', '=', device_id)
    .executeTakeFirst();
  if (!target || isTerminalTarget(target.status as TargetStatus)) return false;

  const terminal = report.status !== 'in_progress';
  const progress = report.progress ?? (report.status === 'successful' ? 100 : target.progress);
  const message = report.message ?? target.message;
  const response = report.response === undefined ? target.response : JSON.stringify(report.response);
  if (
    !terminal &&
    target.status === 'in_progress' &&
    progress === target.progress &&
    message === target.message &&
    response === target.response
  ) {
    return false;
  }
  await trx
    .updateTable('job_targets')
    .set({
      status: report.status,
      progress,
      message,
      response,
      start_time: target.start_time ?? now,
      end_time: terminal ? now : null,
      deadline: terminal ? null : target.start_time === null ? now + target.timeout * 1000 : undefined,
    })
    .where('job_id', '=', job_id)
    .where('device_id', '=', device_id)
    .execute();
  if (terminal) countEnded(ended, job_id, report.status);
  return true;
}

export async function applyStatuses(db: Db, updates: StatusUpdate[], now: Millis): Promise<boolean[]> {
  return db.transaction().execute(async (trx) => {
    const applied: boolean[] = [];
    const ended: Ended = new Map();
    for (const update of updates) applied.push(await applyStatus(trx, update, now, ended));
    await countTerminal(trx, ended, now);
    return applied;
  });
}

export async function expireTargets(db: Db, now: Millis, limit: number): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const expired = await trx
      .selectFrom('job_targets')
      .select(['job_id', 'device_id'])
      .where('status', 'in', PENDING)
      .where('deadline', '<=', now)
      .orderBy('deadline')
      .limit(limit)
      .execute();
    const ended: Ended = new Map();
    for (const { job_id, device_id } of expired) {
      await trx
        .updateTable('job_targets')
        .set({ status: 'timed_out', end_time: now, deadline: null, message: 'timed out' })
        .where('job_id', '=', job_id)
        .where('device_id', '=', device_id)
        .execute();
      countEnded(ended, job_id, 'timed_out');
    }
    await countTerminal(trx, ended, now);
    return expired.length;
  });
}

export async function nextDeadline(db: Db): Promise<Millis | null> {
  const row = await db
    .selectFrom('job_targets')
    .select((eb) => eb.fn.min('deadline').as('deadline'))
    .where('status', 'in', PENDING)
    .executeTakeFirst();
  return row?.deadline ?? null;
}
