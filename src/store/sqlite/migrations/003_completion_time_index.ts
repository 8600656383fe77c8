import { type Kysely, sql } from 'kysely';

/** Ordering by completion time ("what finished last") gets an index, like submit time. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX jobs_completion_time ON jobs(customer_id, job_completion_time, id)`.execute(db);
}
