import { type Kysely, sql } from 'kysely';

/**
 * Retries per failure type (CONTRACT §9): a target's retries after `failed` and after `timed_out`
 * are counted apart, each against its own budget of the job's retry policy. Adding a column with a
 * constant default rewrites no row. Targets retried before this counted none (their earlier
 * retries are not known by type).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE job_targets ADD COLUMN failed_retries INTEGER NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE job_targets ADD COLUMN timed_out_retries INTEGER NOT NULL DEFAULT 0`.execute(db);
}
