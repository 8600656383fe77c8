import { type Kysely, sql } from 'kysely';

/**
 * "A user's jobs in a state" (`job_status = … and username = …`) read from one index range: the
 * username index read all of the user's jobs (20,000 of 1M) to keep those in the state (579), and
 * sorted them for orderby job_submit_time (75 ms; a few ms from this index).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX jobs_status_username ON jobs(customer_id, job_status, lower(username), id)`.execute(db);
}
