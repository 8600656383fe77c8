import { type Kysely, type SqlBool, sql } from 'kysely';
import { type Millis, progressBucket, settledJobStatus, TARGET_STATUSES } from '../../model/job.js';
import type { Database } from './schema.js';

const BUCKETS = ['progress_success', 'progress_failures', 'progress_canceled', 'progress_pending'] as const;

/** `sum(status IN (…))` for each progress counter, from the one mapping of statuses to counters. */
const bucketSums = sql.join(
  BUCKETS.map((bucket) => {
    const statuses = TARGET_STATUSES.filter((status) => progressBucket(status) === bucket);
    return sql`coalesce(sum(t.status in (${sql.join(statuses)})), 0)`;
  }),
);

/** A bound JSON array of ids, for `IN (SELECT value FROM json_each(?))`: one parameter, however many ids. */
export const jsonIds = (ids: readonly (number | string)[]) =>
  sql`(select value from json_each(${JSON.stringify(ids)}))`;

/** `column IN (the ids)`. */
export const inIds = (column: string, ids: readonly (number | string)[]) =>
  sql<SqlBool>`${sql.ref(column)} in ${jsonIds(ids)}`;

/**
 * Recounts the progress counters of the given jobs from their targets, then settles each one that
 * was not canceled by a user and has no pending target left (`complete` or `failed`). Call it
 * inside the transaction that changed the targets, so the counts always agree with them.
 */
export async function recountJobs(
  db: Kysely<Database>,
  jobIds: readonly number[],
  now: Millis,
): Promise<void> {
  if (jobIds.length === 0) return;
  const { rows } = await sql<{
    id: number;
    job_status: string;
    target_count: number;
    progress_success: number;
    progress_failures: number;
    progress_pending: number;
  }>`update jobs set (${sql.join(BUCKETS.map((bucket) => sql.ref(bucket)))}) =
       (select ${bucketSums} from job_targets t where t.job_id = jobs.id)
     where id in ${jsonIds(jobIds)}
     returning id, job_status, target_count, progress_success, progress_failures, progress_pending`.execute(
    db,
  );
  const settled = { complete: [] as number[], failed: [] as number[] };
  for (const job of rows) {
    if (job.job_status !== 'new' && job.job_status !== 'in_progress') continue;
    const status = settledJobStatus(job);
    if (status !== null) settled[status].push(job.id);
  }
  for (const status of ['complete', 'failed'] as const) {
    if (settled[status].length === 0) continue;
    await db
      .updateTable('jobs')
      .set({ job_status: status, job_completion_time: now })
      .where(inIds('id', settled[status]))
      .execute();
  }
}
