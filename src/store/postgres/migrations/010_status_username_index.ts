import { type Kysely, sql } from 'kysely';

/**
 * As SQLite's 011_status_username_index: "a user's jobs in a state" from one index range. Without
 * it the planner filtered the 29,000 in-progress jobs by user (partial index jobs_in_progress).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX jobs_status_username ON jobs(customer_id, job_status, lower(username), id)`.execute(db);
}
