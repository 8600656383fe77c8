import { type Kysely, sql } from 'kysely';

/** The group inventory reads each account's distinct group paths from this index alone. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX devices_group_path ON devices(customer_id, group_path)`.execute(db);
}
