import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type Kysely, type SqlBool, sql, type Transaction } from 'kysely';
import { isFinishedJob, type JobType, type Millis } from '../../model/job.js';
import type {
  CancelNotice,
  DeviceCredentials,
  DeviceStateUpdate,
  OnSettled,
  OutgoingRequest,
  PresenceUpdate,
  Settled,
  SettleRules,
  StatusUpdate,
} from '../store.js';
import { EndedTargets } from './counts.js';
import type { SqlDialect } from './dialect.js';
import { deviceChanges, recordCurrent, recordEvents, targetChanges } from './events.js';
import { isPending } from './pending.js';
import { applyAbortRules, type EndedRow, requeueRetries } from './rollout.js';
import {
  DEVICE_COLUMNS,
  type DeviceRow,
  deviceFromRow,
  parseJson,
  TARGET_COLUMNS,
  type TargetRow,
  targetFromRow,
} from './rows.js';
import type { Database } from './schema.js';

/**
 * The DispatchStore half of the store: device sessions, target transitions and timeouts. Every
 * target change is one UPDATE that re-checks the status it changes, so two transactions racing on
 * one target (a status and a timeout, on two nodes) change it, and its job's counts, once.
 */

type Db = Kysely<Database>;

/** Code-point order, as the engines order device ids. */
const compareText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
type Trx = Transaction<Database>;

export async function findDeviceCredentials(db: Db, id: string): Promise<DeviceCredentials | undefined> {
  return db
    .selectFrom('devices')
    .select(['id', 'customer_id', 'token_hash'])
    .where('id', '=', id.toUpperCase())
    .executeTakeFirst();
}

export async function listDeviceCredentials(
  db: Db,
  afterId: string,
  limit: number,
): Promise<DeviceCredentials[]> {
  return db
    .selectFrom('devices')
    .select(['id', 'customer_id', 'token_hash'])
    .where('id', '>', afterId)
    .orderBy('id')
    .limit(limit)
    .execute();
}

/** Devices a transaction of disconnectAll marks: 70,000 in one took 9 s on SQLite (events included). */
const DISCONNECT_SLICE = 100;

/**
 * Marks every connected device disconnected, a slice of devices (in key order) per transaction
 * with the event loop free between them. A device whose presence was received after `now` keeps it.
 */
export async function disconnectAll(db: Db, dialect: SqlDialect, now: Millis): Promise<void> {
  const notNewer = sql<SqlBool>`(presence_at is null or presence_at <= ${now})`;
  for (let after = 0; ; ) {
    const rows = await db.transaction().execute(async (trx) => {
      const marked = await trx
        .updateTable('devices')
        .set({ connection_status: 'disconnected', last_disconnect: now })
        .where('pk', 'in', (eb) =>
          eb
            .selectFrom('devices')
            .select('pk')
            .where('pk', '>', after)
            .where('connection_status', '=', 'connected')
            .where(notNewer)
            .orderBy('pk')
            .limit(DISCONNECT_SLICE),
        )
        .where('connection_status', '=', 'connected')
        .where(notNewer)
        .returning(['pk', ...DEVICE_COLUMNS])
        .execute();
      const devices = marked.map(({ pk: _pk, ...device }) => deviceFromRow(device));
      await recordEvents(trx, dialect, now, deviceChanges('UPDATE', devices));
      return marked.map((row) => Number(row.pk));
    });
    if (rows.length === 0) return;
    after = Math.max(...rows);
    await yieldToEventLoop();
  }
}

/** The columns of a presence message, as a devices row (one JSON parameter for the batch). */
const PRESENCE_COLUMNS = ['id', 'connection_status', 'presence_at', 'topic_id'] as const;

/**
 * Applies presence messages, in order, in one transaction: one guarded UPDATE for the batch (one
 * more for each repeat of a device). Each applies unless one received later was applied already
 * (on another node, say): presence follows the order the messages were received in, not applied
 * in. Returns, per message, whether it applied.
 */
export async function setConnections(
  db: Db,
  dialect: SqlDialect,
  updates: readonly PresenceUpdate[],
): Promise<boolean[]> {
  if (updates.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    const applied: boolean[] = [];
    // a device's second message waits for the next round: one row per device in an UPDATE … FROM
    for (let rest = [...updates.entries()]; rest.length > 0; ) {
      const round: [number, PresenceUpdate][] = [];
      const later: [number, PresenceUpdate][] = [];
      const seen = new Set<string>();
      for (const entry of rest) {
        const deviceId = entry[1].device_id;
        (seen.has(deviceId) ? later : round).push(entry);
        seen.add(deviceId);
      }
      const stored = await setRound(
        trx,
        dialect,
        round.map(([, update]) => update),
      );
      for (const [index, update] of round) applied[index] = stored.has(update.device_id);
      rest = later;
    }
    return applied;
  });
}

/** One guarded UPDATE for presence messages of distinct devices; returns the devices it changed. */
async function setRound(trx: Trx, dialect: SqlDialect, updates: PresenceUpdate[]): Promise<Set<string>> {
  const rows = updates.map((update) => ({
    id: update.device_id,
    connection_status: update.status,
    presence_at: update.at,
    topic_id: update.topic_id,
  }));
  // a replayed `online` of a device known connected says nothing new
  const replayed = updates
    .filter((update) => update.replay && update.status === 'connected')
    .map((update) => update.device_id);
  const { rows: changed } = await sql<DeviceRow>`update devices set
      connection_status = m.connection_status,
      last_connect = case when m.connection_status = 'connected' then m.presence_at else devices.last_connect end,
      -- a Will after a closed connection changes nothing more than the presence time
      last_disconnect = case when m.connection_status = 'disconnected' and devices.connection_status = 'connected'
        then m.presence_at else devices.last_disconnect end,
      presence_at = m.presence_at,
      topic_id = case when m.connection_status = 'connected' then m.topic_id else devices.topic_id end
    from (${dialect.jsonRecords('devices', PRESENCE_COLUMNS, JSON.stringify(rows))}) m
    where devices.id = m.id
      and (devices.presence_at is null or devices.presence_at <= m.presence_at)
      and not (m.connection_status = 'connected' and devices.connection_status = 'connected'
        and ${replayed.length > 0 ? dialect.inTexts(sql.ref('m.id'), replayed) : sql<SqlBool>`false`})
    returning ${sql.join(DEVICE_COLUMNS.map((column) => sql.ref(`devices.${column}`)))}`.execute(trx);
  const at = new Map(updates.map((update) => [update.device_id, update.at]));
  // A Will after a closed connection moved only the presence time: no change of the device.
  const devices = changed
    .filter((row) => row.connection_status === 'connected' || row.last_disconnect === at.get(row.id))
    .map(deviceFromRow);
  await recordEvents(trx, dialect, Math.max(...at.values()), deviceChanges('UPDATE', devices));
  return new Set(changed.map((row) => row.id));
}

/** Of the devices, those with a pending target (what to send, or a cancel to deliver), in id order. */
export async function devicesWithRequests(
  db: Db,
  dialect: SqlDialect,
  deviceIds: readonly string[],
): Promise<string[]> {
  if (deviceIds.length === 0) return [];
  const rows = await db
    .selectFrom('devices as d')
    .select('d.id')
    .where(dialect.inTexts(sql.ref('d.id'), [...new Set(deviceIds)]))
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('job_targets as t')
          .select(sql.lit(1).as('one'))
          .whereRef('t.device_pk', '=', 'd.pk')
          .where(isPending('t.status')),
      ),
    )
    .orderBy('d.id')
    .execute();
  return rows.map((row) => row.id);
}

/** How each device writes its id in topics (as it last connected), by stored id. */
export async function deviceTopicIds(
  db: Db,
  dialect: SqlDialect,
  deviceIds: string[],
): Promise<Map<string, string>> {
  if (deviceIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('devices')
    .select(['id', 'topic_id'])
    .where(dialect.inTexts(sql.ref('id'), [...new Set(deviceIds)]))
    .where('topic_id', 'is not', null)
    .execute();
  return new Map(rows.map((row) => [row.id, row.topic_id ?? row.id]));
}

/** Applies device states in order, in one transaction; per state, whether its device exists. */
export async function updateDeviceStates(
  db: Db,
  dialect: SqlDialect,
  updates: readonly DeviceStateUpdate[],
  now: Millis,
): Promise<boolean[]> {
  if (updates.length === 0) return [];
  return db.transaction().execute(async (trx) => {
    const changed: DeviceRow[] = [];
    const known: boolean[] = [];
    for (const { device_id, state } of updates) {
      const rows = await trx
        .updateTable('devices')
        .set({ ...state, last_update: now })
        .where('id', '=', device_id)
        .returning(DEVICE_COLUMNS)
        .execute();
      changed.push(...rows);
      known.push(rows.length > 0);
    }
    await recordEvents(trx, dialect, now, deviceChanges('UPDATE', changed.map(deviceFromRow)));
    return known;
  });
}

interface RequestRow {
  job_id: number;
  device_id: string;
  status: string;
  job_type: string;
  payload: string | null;
  timeout: number;
  attempt: number;
  topic_id: string | null;
}

const toRequest = (row: RequestRow): OutgoingRequest => ({
  job_id: row.job_id,
  device_id: row.device_id,
  job_type: row.job_type as JobType,
  payload: parseJson(row.payload),
  timeout: row.timeout,
  attempt: row.attempt,
  topic_id: row.topic_id ?? row.device_id,
});

/**
 * Moves the queued ones of `rows` to in progress, in one guarded statement: their requests are
 * about to be published. Every row shares its job or its device, so `job_id IN … AND device_id IN
 * …` names exactly them. Returns the rows to publish: those already in progress and those this
 * statement started (not those another transaction ended meanwhile).
 */
async function startTargets(
  trx: Trx,
  dialect: SqlDialect,
  rows: RequestRow[],
  now: Millis,
): Promise<RequestRow[]> {
  const queued = rows.filter((row) => row.status === 'queued');
  if (queued.length === 0) return rows;
  const started = await sql<TargetRow>`update job_targets
    set status = 'in_progress', start_time = ${now}, attempt = attempt + 1, next_attempt_time = null,
        deadline = cast(${now} as bigint) + (select j.timeout * 1000 from jobs j where j.id = job_targets.job_id)
    where status = 'queued'
      and ${dialect.inIntegers(sql.ref('job_id'), [...new Set(queued.map((row) => row.job_id))])}
      and ${dialect.inTexts(sql.ref('device_id'), [...new Set(queued.map((row) => row.device_id))])}
    returning ${sql.join(TARGET_COLUMNS.map((column) => sql.ref(column)))}`.execute(trx);
  await recordEvents(trx, dialect, now, targetChanges(started.rows.map(targetFromRow)));
  const startedAttempts = new Map(started.rows.map((row) => [`${row.job_id} ${row.device_id}`, row.attempt]));
  return rows.flatMap((row) => {
    if (row.status !== 'queued') return [row];
    const attempt = startedAttempts.get(`${row.job_id} ${row.device_id}`);
    return attempt === undefined ? [] : [{ ...row, attempt }];
  });
}

export const REQUEST_COLUMNS = [
  't.job_id',
  't.device_id',
  't.status',
  't.attempt',
  'j.job_type',
  'j.payload',
  'j.timeout',
  'd.topic_id',
] as const;

/** In one transaction: selects request rows, starts the queued ones, and returns their requests. */
export function takeSelected(
  db: Db,
  dialect: SqlDialect,
  now: Millis,
  select: (trx: Trx) => Promise<RequestRow[]>,
): Promise<OutgoingRequest[]> {
  return db.transaction().execute(async (trx) => {
    const rows = await select(trx);
    return (await startTargets(trx, dialect, rows, now)).map(toRequest);
  });
}

export async function takeRequests(
  db: Db,
  dialect: SqlDialect,
  deviceId: string,
  now: Millis,
  limit: number,
  afterJobId: number,
  resend = true,
): Promise<OutgoingRequest[]> {
  return takeSelected(db, dialect, now, (trx) =>
    trx
      .selectFrom('devices as d')
      .innerJoin('job_targets as t', 't.device_pk', 'd.pk')
      .innerJoin('jobs as j', 'j.id', 't.job_id')
      .select(REQUEST_COLUMNS)
      .where('d.id', '=', deviceId)
      .where('t.job_id', '>', afterJobId)
      .where(resend ? isPending('t.status') : sql<SqlBool>`t.status = 'queued'`)
      // A governed job's queued targets are sent by the rollout rules only (rollout.ts).
      .where(sql<SqlBool>`(t.status = 'in_progress' or j.governed = 0)`)
      .where('t.cancel_requested', '=', 0)
      .where('j.job_status', '=', 'in_progress')
      .orderBy('t.job_id')
      .limit(limit)
      .execute(),
  );
}

export async function takeJobRequests(
  db: Db,
  dialect: SqlDialect,
  jobId: number,
  now: Millis,
  limit: number,
  afterDeviceId: string,
  skipDeviceIds: string[] = [],
  resend = false,
): Promise<OutgoingRequest[]> {
  return takeSelected(db, dialect, now, (trx) =>
    trx
      .selectFrom('job_targets as t')
      .innerJoin('jobs as j', 'j.id', 't.job_id')
      .innerJoin('devices as d', 'd.pk', 't.device_pk')
      .select(REQUEST_COLUMNS)
      .where('t.job_id', '=', jobId)
      .where('t.device_id', '>', afterDeviceId)
      .$if(skipDeviceIds.length > 0, (query) =>
        query.where(sql<SqlBool>`not (${dialect.inTexts(sql.ref('t.device_id'), skipDeviceIds)})`),
      )
      .where(resend ? isPending('t.status') : sql<SqlBool>`t.status = 'queued'`)
      .where('t.cancel_requested', '=', 0)
      .where('j.job_status', '=', 'in_progress')
      // A governed job's queued targets are sent by the rollout rules only (rollout.ts).
      .where(sql<SqlBool>`(t.status = 'in_progress' or j.governed = 0)`)
      .where('d.connection_status', '=', 'connected')
      .orderBy('t.device_id')
      .limit(limit)
      .modifyEnd(dialect.claimLock('t'))
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

/**
 * Applies one report to its target in one guarded UPDATE: only a pending target of that device
 * changes, and an in-progress report that changes nothing is no change. A terminal one is counted
 * in `ended`. Returns the target when its status changed (what an event reports).
 */
async function applyStatus(
  trx: Trx,
  dialect: SqlDialect,
  { device_id, job_id, report }: StatusUpdate,
  now: Millis,
  ended: EndedRow[],
): Promise<{ applied: boolean; target?: TargetRow }> {
  const terminal = report.status !== 'in_progress';
  // An in-progress report moves a queued target only; otherwise it changes progress, not status.
  const before = terminal
    ? undefined
    : await trx
        .selectFrom('job_targets as t')
        .select('t.status')
        .where('t.job_id', '=', job_id)
        .where('t.device_id', '=', device_id)
        .modifyEnd(dialect.lockRows('t'))
        .executeTakeFirst();
  const progress = sql<number>`coalesce(${report.progress ?? (report.status === 'successful' ? 100 : null)}, progress)`;
  const message = sql<string | null>`coalesce(${report.message ?? null}, message)`;
  const response = sql<
    string | null
  >`coalesce(${report.response === undefined ? null : JSON.stringify(report.response)}, response)`;
  const jobTimeout = sql`(select j.timeout * 1000 from jobs j where j.id = job_targets.job_id)`;
  let update = trx
    .updateTable('job_targets')
    .set({
      status: report.status,
      progress,
      message,
      response,
      start_time: sql`coalesce(start_time, ${now})`,
      end_time: terminal ? now : null,
      deadline: terminal
        ? null
        : sql`case when start_time is null then cast(${now} as bigint) + ${jobTimeout} else deadline end`,
    })
    .where('job_id', '=', job_id)
    .where('device_id', '=', device_id)
    .where(isPending('status'))
    .where('device_pk', 'in', (eb) => eb.selectFrom('devices').select('pk').where('id', '=', device_id));
  if (!terminal) {
    update = update.where(
      sql<SqlBool>`not (status = 'in_progress' and progress = ${progress}
        and message is not distinct from ${message} and response is not distinct from ${response})`,
    );
  }
  const changed = await update.returning(TARGET_COLUMNS).executeTakeFirst();
  if (changed && terminal) ended.push(changed);
  const statusChanged = changed !== undefined && (terminal || before?.status === 'queued');
  return { applied: changed !== undefined, ...(statusChanged ? { target: changed } : {}) };
}

/**
 * Counts the targets a transaction ended, after the job's retry policy took back those it tries
 * again; then the abort rules of their jobs are judged on the new counts, in the same transaction.
 * Last, the events of `changed` targets and of the jobs, as they are now (a retried target queued
 * again, a job paused or aborted). Answers the jobs this transaction finished, and the cancels
 * an abort rule asks for.
 */
async function settle(
  trx: Trx,
  dialect: SqlDialect,
  ended: EndedRow[],
  changed: readonly TargetRow[],
  now: Millis,
  rules: SettleRules | undefined,
): Promise<Settled> {
  const counted = new EndedTargets().addAll(await requeueRetries(trx, dialect, ended, now, rules));
  await counted.count(trx, dialect, now);
  const cancels = await applyAbortRules(trx, dialect, counted.jobIds(), now, rules);
  const jobs = await recordCurrent(trx, dialect, now, counted.jobIds(), changed);
  return {
    finished: jobs.filter((job) => isFinishedJob(job.job_status) && job.job_completion_time === now),
    cancels,
  };
}

/** Tells `onSettled`, after the commit, what a change of targets settled, if anything. */
function tell(settled: Settled, onSettled: OnSettled | undefined): void {
  if (settled.finished.length > 0 || settled.cancels.length > 0) onSettled?.(settled);
}

export async function applyStatuses(
  db: Db,
  dialect: SqlDialect,
  updates: StatusUpdate[],
  now: Millis,
  rules?: SettleRules,
  onSettled?: OnSettled,
): Promise<boolean[]> {
  const { applied, settled } = await db.transaction().execute(async (trx) => {
    const applied: boolean[] = [];
    const changed: TargetRow[] = [];
    const ended: EndedRow[] = [];
    // In target key order (a stable sort keeps one target's reports in order), the order every
    // multi-target change locks targets in, so concurrent transactions cannot deadlock on them.
    const byKey = updates
      .map((update, index) => ({ update, index }))
      .sort(
        (a, b) => a.update.job_id - b.update.job_id || compareText(a.update.device_id, b.update.device_id),
      );
    for (const { update, index } of byKey) {
      const { applied: done, target } = await applyStatus(trx, dialect, update, now, ended);
      if (target !== undefined) changed.push(target);
      applied[index] = done;
    }
    return { applied, settled: await settle(trx, dialect, ended, changed, now, rules) };
  });
  tell(settled, onSettled);
  return applied;
}

/** One guarded UPDATE: the pending targets past their deadline, earliest first, become `timed_out`. */
export async function expireTargets(
  db: Db,
  dialect: SqlDialect,
  now: Millis,
  limit: number,
  rules?: SettleRules,
  onSettled?: OnSettled,
): Promise<number> {
  const { count, settled } = await db.transaction().execute(async (trx) => {
    const expired = await trx
      .updateTable('job_targets')
      .set({ status: 'timed_out', end_time: now, deadline: null, message: 'timed out' })
      .where(isPending('status'))
      .where(
        sql<SqlBool>`(job_id, device_id) in (${trx
          .selectFrom('job_targets as due')
          .select(['due.job_id', 'due.device_id'])
          .where(isPending('due.status'))
          .where('due.deadline', '<=', now)
          .orderBy('due.deadline')
          .limit(limit)
          .modifyEnd(dialect.claimLock('due'))})`,
      )
      .returning(TARGET_COLUMNS)
      .execute();
    return { count: expired.length, settled: await settle(trx, dialect, expired, expired, now, rules) };
  });
  tell(settled, onSettled);
  return count;
}

export async function nextDeadline(db: Db): Promise<Millis | null> {
  const row = await db
    .selectFrom('job_targets')
    .select((eb) => eb.fn.min('deadline').as('deadline'))
    .where(isPending('status'))
    .executeTakeFirst();
  return row?.deadline ?? null;
}
