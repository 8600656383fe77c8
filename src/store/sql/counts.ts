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

/**
 * Job counters move only by what a guarded statement returned: each pending target that one of
 * them ended (it re-checked that the target was still pending) leaves `progress_pending` for the
 * counter of its new status, exactly once, whichever transaction got there first.
 */
export class EndedTargets {
  readonly #byJob = new Map<number, Map<ReturnType<typeof progressBucket>, number>>();

  add(jobId: number, status: TargetStatus): void {
    const buckets = this.#byJob.get(jobId) ?? new Map();
    const bucket = progressBucket(status);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
    this.#byJob.set(jobId, buckets);
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
              .set({ job_status: settled, job_completion_time: now })
              .where('id', '=', jobId)
              .where('job_status', 'in', ['new', 'in_progress'])
              .returning(JOB_COLUMNS)
              .executeTakeFirst();
      counted.push(jobFromRow(after ?? job));
    }
    return counted;
  }
}
