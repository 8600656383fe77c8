import { type Kysely, sql } from 'kysely';

/**
 * "A user's jobs in a state", newest first (orderby id): the matches in order, and only them.
 * SQLite reads them from jobs_username_folded (the user's jobs by id, each one's job_status beside
 * it). PostgreSQL's planner prices that path above jobs_in_progress, taking that partial index's
 * rows, in heap order, to lie on few pages: a page of `job_status = 'in_progress' and username =
 * 'user7'` then fetched 28,000 jobs from 15,000 pages to keep 579, ~25–30 ms, against ~3 ms from
 * this index's 579 entries (bench/query-pages.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX jobs_status_username ON jobs(customer_id, job_status, lower(username), id)`.execute(
    db,
  );
}
