import { type Kysely, sql } from 'kysely';

/**
 * A monitor query folds and compares `url` and `last_sent_uuid` as every queried text column:
 * under the C collation (ASCII-only `lower()`, code point order), as SQLite does.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`ALTER TABLE monitors
    ALTER COLUMN url TYPE TEXT COLLATE "C",
    ALTER COLUMN last_sent_uuid TYPE TEXT COLLATE "C"`.execute(db);
}
