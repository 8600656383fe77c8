import { type QueryExecutorProvider, sql } from 'kysely';
import { JOB_STATUSES, type JobStatus } from '../../model/job.js';
import type { StoreTotals } from '../store.js';

const TARGET_BUCKETS = ['successful', 'failed', 'canceled', 'pending'] as const;

/**
 * The store-wide totals that /metrics reports, from the `store_totals` rows that the store keeps
 * as jobs and devices change (a few rows, however large the store): jobs by status, targets by
 * progress bucket, devices connected. Engine-neutral SQL: PostgreSQL keeps each total in shards
 * (its migration 013), added up here.
 */
export async function storeTotals(db: QueryExecutorProvider): Promise<StoreTotals> {
  const { rows } = await sql<{ name: string; value: number | string }>`
    select name, sum(value) as value from store_totals group by name`.execute(db);
  const value = new Map(rows.map((row) => [row.name, Number(row.value)]));
  const count = (name: string) => value.get(name) ?? 0;
  return {
    jobs: Object.fromEntries(JOB_STATUSES.map((status) => [status, count(`jobs:${status}`)])) as Record<
      JobStatus,
      number
    >,
    targets: Object.fromEntries(
      TARGET_BUCKETS.map((bucket) => [bucket, count(`targets:${bucket}`)]),
    ) as StoreTotals['targets'],
    devicesConnected: count('devices:connected'),
  };
}
