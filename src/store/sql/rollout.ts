import { type Kysely, type SqlBool, sql, type Transaction } from 'kysely';
import { isFinishedJob, type Job, type JobStatus, type Millis } from '../../model/job.js';
import type { EndBehavior, RolloutControls, RolloutState } from '../../model/rollout.js';
import { hasControls } from '../../model/rollout.js';
import type { Query } from '../../query/index.js';
import type {
  ByIdResult,
  ByQueryResult,
  CancelNotice,
  OutgoingRequest,
  RolloutJob,
  SendSlot,
  SettleRules,
} from '../store.js';
import { EndedTargets } from './counts.js';
import type { SqlDialect } from './dialect.js';
import { REQUEST_COLUMNS, takeSelected } from './dispatch.js';
import { jobChanges, recordCurrent, recordEvents } from './events.js';
import { targetWhere } from './filters.js';
import { byIds, cancel, candidates } from './jobs.js';
import { CONTROL_COLUMNS, controlsFromRow, JOB_COLUMNS, jobFromRow } from './rows.js';
import type { Database } from './schema.js';

/**
 * The statements of rollouts (CONTRACT §9). The rules themselves are src/jobs/rollout/'s: the
 * tick asks them and hands their answer here; target ends are judged by the SettleRules the
 * dispatcher passes, in the transaction that ends the targets. A job's pace (next_send_at,
 * send_seq) lives in its row, so every node and every restart keeps to the same limits.
 */

type Db = Kysely<Database>;
type Trx = Transaction<Database>;

/** The columns a new job's controls are stored in. */
export function controlColumns(controls: RolloutControls, state: RolloutState) {
  const governed = hasControls(controls) ? 1 : 0;
  return {
    rollout: json(controls.rollout),
    abort_rules: json(controls.abort),
    retry: json(controls.retry),
    schedule: json(controls.schedule),
    rollout_state: state,
    governed,
    rollout_active: governed,
  };
}

const json = (value: unknown) => (value === null ? null : JSON.stringify(value));

// ---- the tick ----

export async function rolloutJobs(db: Db, limit: number): Promise<RolloutJob[]> {
  const rows = await db
    .selectFrom('jobs')
    .select([
      'id',
      'job_status',
      'rollout_state',
      'next_send_at',
      'send_seq',
      'notified_count',
      'progress_success',
      ...CONTROL_COLUMNS,
    ])
    // A literal, so the partial index jobs_rollout serves it.
    .where('rollout_active', '=', sql.lit(1))
    .orderBy('id')
    .limit(limit)
    .execute();
  const jobs: RolloutJob[] = [];
  for (const { rollout, abort_rules, retry, schedule, ...row } of rows) {
    const controls = controlsFromRow({ rollout, abort_rules, retry, schedule });
    const maxInFlight = controls.rollout?.max_in_flight;
    jobs.push({
      ...row,
      ...controls,
      job_status: row.job_status as JobStatus,
      rollout_state: row.rollout_state as RolloutState,
      in_flight:
        maxInFlight === undefined || isFinishedJob(row.job_status as JobStatus)
          ? 0
          : await countInFlight(db, row.id, maxInFlight),
    });
  }
  return jobs;
}

/** A job's in-progress targets, counted up to `limit` (an index range of at most that many entries). */
async function countInFlight(db: Db, jobId: number, limit: number): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from (
      select 1 from job_targets where job_id = ${jobId} and status = 'in_progress' limit ${limit}) f`.execute(
    db,
  );
  return Number(rows[0]?.n ?? 0);
}

export function moveRolloutState(
  db: Db,
  dialect: SqlDialect,
  jobId: number,
  from: RolloutState,
  to: RolloutState,
  now: Millis,
): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const moved = await trx
      .updateTable('jobs')
      .set({
        rollout_state: to,
        job_status: to === 'scheduled' ? sql`job_status` : 'in_progress',
      })
      .where('id', '=', jobId)
      .where('rollout_state', '=', from)
      .where('job_status', 'in', ['new', 'in_progress'])
      .returning('id')
      .executeTakeFirst();
    if (moved === undefined) return false;
    await recordCurrent(trx, dialect, now, [jobId], []);
    return true;
  });
}

export function takeRolloutRequests(
  db: Db,
  dialect: SqlDialect,
  slot: SendSlot,
  now: Millis,
): Promise<OutgoingRequest[]> {
  return takeSelected(db, dialect, now, async (trx) => {
    // The slot: this job row stays locked (PostgreSQL) until commit, so a status that fires an
    // abort rule, or a pause, waits for this send or is seen by it.
    const taken = await trx
      .updateTable('jobs')
      .set({ send_seq: sql`send_seq + 1` })
      .where('id', '=', slot.jobId)
      .where('send_seq', '=', slot.sendSeq)
      .where('job_status', '=', 'in_progress')
      .where('rollout_state', '=', 'running')
      .returning('id')
      .executeTakeFirst();
    if (taken === undefined) return [];
    const rows = await trx
      .selectFrom('job_targets as t')
      .innerJoin('jobs as j', 'j.id', 't.job_id')
      .innerJoin('devices as d', 'd.pk', 't.device_pk')
      .select(REQUEST_COLUMNS)
      .where('t.job_id', '=', slot.jobId)
      // A literal, so the planners take job_targets_job_status (job, status, device) and read
      // only queued targets from the cursor on, never those already sent.
      .where('t.status', '=', sql.lit('queued'))
      .where('t.device_id', '>', slot.afterDeviceId)
      .where((eb) => eb.or([eb('t.next_attempt_time', 'is', null), eb('t.next_attempt_time', '<=', now)]))
      .$if(slot.skipDeviceIds.length > 0, (query) =>
        query.where(sql<SqlBool>`not (${dialect.inTexts(sql.ref('t.device_id'), slot.skipDeviceIds)})`),
      )
      .where('d.connection_status', '=', 'connected')
      .orderBy('t.device_id')
      .limit(slot.limit)
      .modifyEnd(dialect.claimLock('t'))
      .execute();
    if (rows.length > 0) {
      await trx
        .updateTable('jobs')
        .set({
          next_send_at: slot.nextSendAt(rows.length),
          notified_count: sql`notified_count + ${rows.length}`,
        })
        .where('id', '=', slot.jobId)
        .execute();
    }
    return rows;
  });
}

export function endRollout(
  db: Db,
  dialect: SqlDialect,
  jobId: number,
  behavior: EndBehavior,
  now: Millis,
): Promise<CancelNotice[]> {
  return db.transaction().execute(async (trx) => {
    if (behavior !== 'stop') {
      const owner = await trx
        .selectFrom('jobs')
        .select('customer_id')
        .where('id', '=', jobId)
        .executeTakeFirst();
      if (owner === undefined) return [];
      const [job] = await candidates(trx, owner.customer_id, byIds(dialect, [jobId]));
      return job === undefined || isFinishedJob(job.job_status)
        ? []
        : cancel(trx, dialect, [job], behavior === 'force_cancel', now);
    }
    const canceled = await trx
      .updateTable('job_targets')
      .set({ status: 'canceled', end_time: now, deadline: null, next_attempt_time: null })
      .where('job_id', '=', jobId)
      .where('status', '=', 'queued')
      .returning(['job_id', 'device_id', 'status'])
      .execute();
    await new EndedTargets().addAll(canceled).count(trx, dialect, now);
    await recordCurrent(trx, dialect, now, [jobId], canceled);
    return [];
  });
}

export async function closeRollout(db: Db, jobId: number): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ rollout_active: 0 })
    .where('id', '=', jobId)
    .where('rollout_active', '=', 1)
    .where('job_status', 'in', ['complete', 'failed', 'canceled'])
    .execute();
}

// ---- settling ended targets (in the transaction that ended them) ----

/** A target a guarded statement just ended. */
export interface EndedRow {
  job_id: number;
  device_id: string;
  status: string;
  attempt: number;
}

/**
 * Of the targets just ended, those whose job retries them go back to queued with their
 * next_attempt_time, one more retry of that failure type used (still pending: no count moves);
 * answers the others, which ended.
 */
export async function requeueRetries(
  trx: Db,
  dialect: SqlDialect,
  ended: EndedRow[],
  now: Millis,
  rules: SettleRules | undefined,
): Promise<EndedRow[]> {
  const failures = ended.filter((row) => row.status === 'failed' || row.status === 'timed_out');
  if (rules === undefined || failures.length === 0) return ended;
  const policies = new Map(
    (
      await trx
        .selectFrom('jobs')
        .select(['id', 'retry', 'offline_timeout'])
        .where(dialect.inIntegers(sql.ref('id'), [...new Set(failures.map((row) => row.job_id))]))
        .where('retry', 'is not', null)
        .where('job_status', 'in', ['new', 'in_progress'])
        .execute()
    ).map((row) => [row.id, row]),
  );
  const requeued = new Set<EndedRow>();
  for (const row of failures) {
    const job = policies.get(row.job_id);
    if (job === undefined) continue;
    const status = row.status as 'failed' | 'timed_out';
    // This transaction ended the target, so its row is locked and its counters are current.
    const used = await trx
      .selectFrom('job_targets')
      .select(['failed_retries', 'timed_out_retries'])
      .where('job_id', '=', row.job_id)
      .where('device_id', '=', row.device_id)
      .executeTakeFirst();
    if (used === undefined) continue;
    const due = rules.nextAttemptTime(
      controlsFromRow({ rollout: null, abort_rules: null, retry: job.retry, schedule: null }).retry,
      status,
      { attempt: row.attempt, ...used },
      now,
    );
    if (due === null) continue;
    const counter = status === 'failed' ? 'failed_retries' : 'timed_out_retries';
    const back = await trx
      .updateTable('job_targets')
      .set({
        status: 'queued',
        next_attempt_time: due,
        end_time: null,
        deadline: due + job.offline_timeout * 1000,
        cancel_requested: 0,
        [counter]: used[counter] + 1,
      })
      .where('job_id', '=', row.job_id)
      .where('device_id', '=', row.device_id)
      .where('status', '=', row.status)
      .returning('job_id')
      .executeTakeFirst();
    if (back !== undefined) requeued.add(row);
  }
  return ended.filter((row) => !requeued.has(row));
}

/**
 * After the counts of `jobIds` moved: the first abort rule of each that fires now (and never fired)
 * cancels the job or pauses it, with its reason. Answers the cancels to send once this commits:
 * the in-progress targets of the jobs it canceled (no request is sent after the commit, as the
 * job is no longer running).
 */
export async function applyAbortRules(
  trx: Db,
  dialect: SqlDialect,
  jobIds: number[],
  now: Millis,
  rules: SettleRules | undefined,
): Promise<CancelNotice[]> {
  if (rules === undefined || jobIds.length === 0) return [];
  const jobs = await trx
    .selectFrom('jobs')
    .select([
      'id',
      'customer_id',
      'abort_rules',
      'fired_rules',
      'progress_success',
      'progress_failures',
      'progress_timed_out',
    ])
    .where(
      dialect.inIntegers(
        sql.ref('id'),
        [...jobIds].sort((a, b) => a - b),
      ),
    )
    .where('abort_rules', 'is not', null)
    .where('job_status', 'in', ['new', 'in_progress'])
    .execute();
  const cancels: CancelNotice[] = [];
  for (const job of jobs) {
    const { abort } = controlsFromRow({
      rollout: null,
      abort_rules: job.abort_rules,
      retry: null,
      schedule: null,
    });
    const fired = rules.firedAbortRule(
      abort,
      {
        successful: job.progress_success,
        failed: job.progress_failures - job.progress_timed_out,
        timed_out: job.progress_timed_out,
      },
      job.fired_rules,
    );
    if (fired === null) continue;
    if (fired.rule.action === 'cancel') {
      const candidate = await candidates(trx, job.customer_id, byIds(dialect, [job.id]));
      cancels.push(...(await cancel(trx, dialect, candidate, false, now)));
    }
    await trx
      .updateTable('jobs')
      .set({
        rollout_state: fired.rule.action === 'cancel' ? 'aborted' : 'paused',
        abort_reason: fired.reason,
        fired_rules: job.fired_rules | (1 << fired.index),
      })
      .where('id', '=', job.id)
      .execute();
  }
  return cancels;
}

// ---- the API's changes ----

const notFound = (id: number) => ({ id, ok: false as const, status: 404, message: `Job ${id} not found` });
const conflict = (id: number, message: string) => ({ id, ok: false as const, status: 409, message });

async function lockedJob(trx: Trx, dialect: SqlDialect, accountId: number, id: number) {
  return trx
    .selectFrom('jobs as j')
    .select(JOB_COLUMNS.map((column) => `j.${column}` as const))
    .where('j.customer_id', '=', accountId)
    .where('j.id', '=', id)
    .modifyEnd(dialect.lockRows('j'))
    .executeTakeFirst();
}

/** Pauses (`paused`) or resumes (`running`) a job: the tick sends its queued targets from then on. */
export function setPaused(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  id: number,
  paused: boolean,
): Promise<ByIdResult<Job>> {
  return db.transaction().execute(async (trx): Promise<ByIdResult<Job>> => {
    const row = await lockedJob(trx, dialect, accountId, id);
    if (row === undefined) return notFound(id);
    const job = jobFromRow(row);
    if (isFinishedJob(job.job_status)) return conflict(id, `Job ${id} is already ${job.job_status}`);
    if (!paused && job.rollout_state !== 'paused') return conflict(id, `Job ${id} is not paused`);
    const changed = await trx
      .updateTable('jobs')
      .set({ rollout_state: paused ? 'paused' : 'running', governed: 1, rollout_active: 1 })
      .where('id', '=', id)
      .returning(JOB_COLUMNS)
      .executeTakeFirstOrThrow();
    await recordEvents(trx, dialect, Date.now(), jobChanges('UPDATE', [jobFromRow(changed)]));
    return { id, ok: true, value: jobFromRow(changed) };
  });
}

/** The job's targets that `query` matches (`t` with its device `d`, as target queries see them). */
function matching(dialect: SqlDialect, jobId: number, query: Query | null, now: Millis) {
  return (db: Db) =>
    db
      .selectFrom('job_targets as t')
      .leftJoin('devices as d', 'd.pk', 't.device_pk')
      .where('t.job_id', '=', jobId)
      .$if(query !== null, (select) => select.where(targetWhere(query as Query, dialect.id, now)));
}

async function countMatching(trx: Db, select: ReturnType<typeof matching>): Promise<number> {
  const row = await select(trx)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

const targetKeys = (select: ReturnType<typeof matching>, trx: Db) =>
  sql<SqlBool>`(job_id, device_id) in (${select(trx).select(['t.job_id', 't.device_id'])})`;

export function retryTargets(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  jobId: number,
  query: Query | null,
  now: Millis,
): Promise<ByQueryResult | undefined> {
  return db.transaction().execute(async (trx) => {
    const job = await lockedJob(trx, dialect, accountId, jobId);
    if (job === undefined) return undefined;
    const select = matching(dialect, jobId, query, now);
    const matched = await countMatching(trx, select);
    // Terminal targets change only here (guarded by the job row locked above): count them by
    // status first, as RETURNING shows the new status.
    const ended = await select(trx)
      .select(['t.status', (eb) => eb.fn.countAll().as('n')])
      .where('t.status', 'in', ['failed', 'timed_out', 'canceled'])
      .where('t.device_pk', 'is not', null)
      .groupBy('t.status')
      .execute();
    const count = (status: string) => Number(ended.find((row) => row.status === status)?.n ?? 0);
    // failed_retries and timed_out_retries stay: a retry in place is the user's, not the policy's.
    const back = await trx
      .updateTable('job_targets')
      .set({
        status: 'queued',
        progress: 0,
        start_time: null,
        end_time: null,
        next_attempt_time: null,
        cancel_requested: 0,
        deadline: sql`cast(${now} as bigint) + (select j.offline_timeout * 1000 from jobs j where j.id = job_targets.job_id)`,
      })
      .where('job_id', '=', jobId)
      .where('status', 'in', ['failed', 'timed_out', 'canceled'])
      .where('device_pk', 'is not', null)
      .where(targetKeys(select, trx))
      .returning(['job_id', 'device_id'])
      .execute();
    if (back.length > 0) {
      const timedOut = count('timed_out');
      await trx
        .updateTable('jobs')
        .set({
          progress_failures: sql`progress_failures - ${count('failed') + timedOut}`,
          progress_timed_out: sql`progress_timed_out - ${timedOut}`,
          progress_canceled: sql`progress_canceled - ${count('canceled')}`,
          progress_pending: sql`progress_pending + ${back.length}`,
          job_status: 'in_progress',
          job_completion_time: null,
          governed: 1,
          rollout_active: 1,
          rollout_state: sql`case when rollout_state in ('done', 'aborted') then 'running' else rollout_state end`,
        })
        .where('id', '=', jobId)
        .execute();
      await recordCurrent(trx, dialect, now, [jobId], back);
    }
    return { count: back.length, skipped: matched - back.length };
  });
}

export function cancelTargets(
  db: Db,
  dialect: SqlDialect,
  accountId: number,
  jobId: number,
  query: Query | null,
  force: boolean,
  now: Millis,
): Promise<(ByQueryResult & { notices: CancelNotice[] }) | undefined> {
  return db.transaction().execute(async (trx) => {
    const job = await lockedJob(trx, dialect, accountId, jobId);
    if (job === undefined) return undefined;
    const select = matching(dialect, jobId, query, now);
    const matched = await countMatching(trx, select);
    const canceled = await trx
      .updateTable('job_targets')
      .set({ status: 'canceled', end_time: now, deadline: null, next_attempt_time: null })
      .where('job_id', '=', jobId)
      .where('status', '=', 'queued')
      .where(targetKeys(select, trx))
      .returning(['job_id', 'device_id', 'status'])
      .execute();
    const told = await trx
      .updateTable('job_targets')
      .set(
        force
          ? { status: 'canceled', end_time: now, deadline: null, cancel_requested: 1 }
          : { cancel_requested: 1 },
      )
      .where('job_id', '=', jobId)
      .where('status', '=', 'in_progress')
      .where(targetKeys(select, trx))
      .returning(['job_id', 'device_id', 'status'])
      .execute();
    const ended = new EndedTargets().addAll(canceled);
    if (force) ended.addAll(told);
    await ended.count(trx, dialect, now);
    await recordCurrent(trx, dialect, now, [jobId], [...canceled, ...(force ? told : [])]);
    return {
      count: canceled.length + told.length,
      skipped: matched - canceled.length - told.length,
      notices: told.map(({ job_id, device_id }) => ({ job_id, device_id, force })),
    };
  });
}
