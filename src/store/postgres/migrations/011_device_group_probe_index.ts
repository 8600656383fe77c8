import { type Kysely, sql } from 'kysely';

/**
 * The index SQLite's 012 adds, for the same probe of a job's targets by their device's group
 * (each engine gets every index the other has).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`CREATE INDEX devices_pk_group ON devices(pk, lower(group_path))`.execute(db);
}
