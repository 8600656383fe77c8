import { type QueryExecutorProvider, sql } from 'kysely';
import { JOB_STATUSES, type JobStatus } from '../../model/job.js';
import type { StoreTotals } from '../store.js';

/**
 * The store-wide totals that /metrics reports: jobs by status, targets by progress bucket (from
 * the jobs' own counters, never a scan of the targets), devices connected. Engine-neutral SQL.
 */
export async function storeTotals(db: QueryExecutorProvider): Promise<StoreTotals> {
  const { rows } = await sql<{
    job_status: string;
    jobs: number | string;
    successful: number | string | null;
    failed: number | string | null;
    canceled: number | string | null;
    pending: number | string | null;
  }>`select job_status, count(*) as jobs, sum(progress_success) as successful,
       sum(progress_failures) as failed, sum(progress_canceled) as canceled,
       sum(progress_pending) as pending
     from jobs group by job_status`.execute(db);
  const connected = await sql<{ count: number | string }>`select count(*) as count from devices
     where connection_status = 'connected'`.execute(db);
  const jobs = Object.fromEntries(JOB_STATUSES.map((status) => [status, 0])) as Record<JobStatus, number>;
  const targets = { successful: 0, failed: 0, canceled: 0, pending: 0 };
  for (const row of rows) {
    if ((JOB_STATUSES as readonly string[]).includes(row.job_status)) {
      jobs[row.job_status as JobStatus] = Number(row.jobs);
    }
    for (const bucket of ['successful', 'failed', 'canceled', 'pending'] as const) {
      targets[bucket] += Number(row[bucket] ?? 0);
    }
  }
  return { jobs, targets, devicesConnected: Number(connected.rows[0]?.count ?? 0) };
}
