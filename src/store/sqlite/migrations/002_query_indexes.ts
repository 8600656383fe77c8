import { type Kysely, sql } from 'kysely';

/**
 * Indexes for query conditions. Text conditions compare `lower(column)` (src/query/sql.ts), so only
 * an index on that expression serves them. `job_status` rides along in the username index, so
 * "this user's jobs in this state" (a common cancel or delete) is read from the index alone.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX jobs_username_folded ON jobs(customer_id, lower(username), id, job_status)`.execute(
    db,
  );
  await sql`CREATE INDEX devices_id_folded ON devices(customer_id, lower(id))`.execute(db);
}
