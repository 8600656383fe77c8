import { type Kysely, sql } from 'kysely';

/**
 * "A user's jobs in a state", newest first (orderby id): the matches in order, and only them.
 * SQLite reads them from jobs_username_folded, checking each of the user's jobs' `job_status` in
 * the index. PostgreSQL's planner prices that path above jobs_in_progress (it takes the partial
 * index's rows, ordered like the heap, to lie on few pages), so a page of `job_status =
 * 'in_progress' and username = 'user7'` fetched 28,000 jobs from 15,000 pages to keep 579: ~25 ms
 * against ~3 ms here (bench/query-pages.ts).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX jobs_status_username ON jobs(customer_id, job_status, lower(username), id)`.execute(
    db,
  );
}
