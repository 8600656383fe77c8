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
import { JOB_COLUMNS, jobFromRow } from './rows.js';
import type { Database } from './schema.js';

/** The rollout state of a job that just finished: `done`, unless an abort rule canceled it. */
export const FINISHED_ROLLOUT_STATE = sql<string>`case when rollout_state = 'aborted' then rollout_state else 'done' end`;

/**
 * Job counters move only by what a guarded statement returned: each pending target that one of
 * them ended (it re-checked that the target was still pending) leaves `progress_pending` for the
 * counter of its new status, exactly once, whichever transaction got there first.
 */
export class EndedTargets {
  readonly #byJob = new Map<number, Map<ReturnType<typeof progressBucket>, number>>();
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
   * Moves the counts of each job (in job order, so concurrent transactions lock jobs in the same
   * order), then settles a job that was not finished (e.g. canceled by a user) once it has no
   * pending target left, by the one rule of `settledJobStatus`. Call it in the transaction that
   * ended the targets. Returns the jobs as they are after it (for their events).
   */
  async count(db: Kysely<Database>, now: Millis): Promise<Job[]> {
    const counted: Job[] = [];
    for (const jobId of [...this.#byJob.keys()].sort((a, b) => a - b)) {
      const buckets = this.#byJob.get(jobId) ?? new Map();
      let total = 0;
      const deltas: Record<string, unknown> = {};
      for (const [bucket, count] of buckets) {
        total += count;
        deltas[bucket] = sql`${sql.ref(bucket)} + ${count}`;
      }
      const timedOut = this.#timedOut.get(jobId);
      if (timedOut !== undefined) deltas.progress_timed_out = sql`progress_timed_out + ${timedOut}`;
      const job = await db
        .updateTable('jobs')
        .set({ ...deltas, progress_pending: sql`progress_pending - ${total}` })
        .where('id', '=', jobId)
        .returning(JOB_COLUMNS)
        .executeTakeFirst();
      if (!job) continue;
      const settled = isFinishedJob(job.job_status as JobStatus) ? null : settledJobStatus(job);
      const after =
        settled === null
          ? job
          : await db
              .updateTable('jobs')
              .set({ job_status: settled, job_completion_time: now, rollout_state: FINISHED_ROLLOUT_STATE })
              .where('id', '=', jobId)
              .where('job_status', 'in', ['new', 'in_progress'])
              .returning(JOB_COLUMNS)
              .executeTakeFirst();
      counted.push(jobFromRow(after ?? job));
    }
    return counted;
  }
}
