import { type Kysely, sql } from 'kysely';

/**
 * Retries per failure type (CONTRACT §9), as SQLite's 010_retry_counts: a target's retries after
 * `failed` and after `timed_out` are counted apart. A constant default rewrites no row.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE job_targets ADD COLUMN failed_retries BIGINT NOT NULL DEFAULT 0`.execute(db);
  await sql`ALTER TABLE job_targets ADD COLUMN timed_out_retries BIGINT NOT NULL DEFAULT 0`.execute(db);
}
