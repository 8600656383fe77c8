import { type Kysely, sql } from 'kysely';
import {
  isFinishedJob,
  type Job,
  type JobStatus,
  type Millis,
  progressBucket,
  settledJobStatus,
  type TargetStatus,
} from '../../model/job.js';
import type { SqlDialect } from './dialect.js';
import { JOB_COLUMNS, jobFromRow } from './rows.js';
import type { Database } from './schema.js';

/** The rollout state of a job that just finished: `done`, unless an abort rule canceled it. */
export const FINISHED_ROLLOUT_STATE = sql<string>`case when rollout_state = 'aborted' then rollout_state else 'done' end`;

type Bucket = ReturnType<typeof progressBucket>;
/** The counters a target that ended moves to (`progress_pending` moves by every target that ended). */
const BUCKETS: readonly Bucket[] = ['progress_success', 'progress_failures', 'progress_canceled'];

/**
 * Job counters move only by what a guarded statement returned: each pending target that one of
 * them ended (it re-checked that the target was still pending) leaves `progress_pending` for the
 * counter of its new status, exactly once, whichever transaction got there first.
 */
export class EndedTargets {
  readonly #byJob = new Map<number, Map<Bucket, number>>();
  /** Of the failures, those that timed out (abort rules tell them apart). */
  readonly #timedOut = new Map<number, number>();

  add(jobId: number, status: TargetStatus): void {
    const buckets = this.#byJob.get(jobId) ?? new Map();
    const bucket = progressBucket(status);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
    this.#byJob.set(jobId, buckets);
    if (status === 'timed_out') this.#timedOut.set(jobId, (this.#timedOut.get(jobId) ?? 0) + 1);
  }

  /** The jobs whose counts this moves. */
  jobIds(): number[] {
    return [...this.#byJob.keys()];
  }

  addAll(rows: readonly { job_id: number; status: string }[]): this {
    for (const row of rows) this.add(row.job_id, row.status as TargetStatus);
    return this;
  }

  /**
   * Moves the counts of the jobs, then settles a job that was not finished (e.g. canceled by a
   * user) once it has no pending target left, by the one rule of `settledJobStatus`. A bounded
   * number of statements whatever the number of jobs: the jobs are locked in job order (so
   * concurrent transactions lock them in the same order), their counters moved by one UPDATE, and
   * the jobs that settle changed by one UPDATE per status. Call it in the transaction that ended
   * the targets. Returns the jobs as they are after it (for their events).
   */
  async count(db: Kysely<Database>, dialect: SqlDialect, now: Millis): Promise<Job[]> {
    const jobIds = [...this.#byJob.keys()].sort((a, b) => a - b);
    if (jobIds.length === 0) return [];
    const ids = dialect.inIntegers(sql.ref('id'), jobIds);
    if (jobIds.length > 1) {
      await db
        .selectFrom('jobs')
        .select('id')
        .where(ids)
        .orderBy('id')
        .modifyEnd(dialect.lockRows('jobs'))
        .execute();
    }
    /** `column + case id when … then n … else 0 end`: each job's own delta. */
    const moved = (column: string, deltaOf: (jobId: number) => number) => {
      const cases = jobIds.flatMap((jobId) => {
        const delta = deltaOf(jobId);
        return delta === 0 ? [] : [sql`when ${jobId} then ${delta}`];
      });
      return cases.length === 0
        ? undefined
        : sql`${sql.ref(column)} + case ${sql.ref('id')} ${sql.join(cases, sql` `)} else 0 end`;
    };
    const bucket = (name: string) => (jobId: number) => this.#byJob.get(jobId)?.get(name as Bucket) ?? 0;
    const total = (jobId: number) =>
      [...(this.#byJob.get(jobId)?.values() ?? [])].reduce((sum, count) => sum + count, 0);
    const deltas: Record<string, unknown> = {};
    for (const column of BUCKETS) {
      const change = moved(column, bucket(column));
      if (change) deltas[column] = change;
    }
    const timedOut = moved('progress_timed_out', (jobId) => this.#timedOut.get(jobId) ?? 0);
    if (timedOut) deltas.progress_timed_out = timedOut;
    const pending = moved('progress_pending', (jobId) => -total(jobId));
    if (pending) deltas.progress_pending = pending;
    const rows = await db.updateTable('jobs').set(deltas).where(ids).returning(JOB_COLUMNS).execute();
    const after = new Map(rows.map((row) => [row.id, row]));
    const settling = new Map<JobStatus, number[]>();
    for (const row of rows) {
      const settled = isFinishedJob(row.job_status as JobStatus) ? null : settledJobStatus(row);
      if (settled !== null) settling.set(settled, [...(settling.get(settled) ?? []), row.id]);
    }
    for (const [status, settledIds] of settling) {
      const settled = await db
        .updateTable('jobs')
        .set({ job_status: status, job_completion_time: now, rollout_state: FINISHED_ROLLOUT_STATE })
        .where(dialect.inIntegers(sql.ref('id'), settledIds))
        .where('job_status', 'in', ['new', 'in_progress'])
        .returning(JOB_COLUMNS)
        .execute();
      for (const row of settled) after.set(row.id, row);
    }
    return jobIds.flatMap((jobId) => {
      const row = after.get(jobId);
      return row ? [jobFromRow(row)] : [];
    });
  }
}
