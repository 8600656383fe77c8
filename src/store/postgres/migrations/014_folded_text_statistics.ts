import { type Kysely, sql } from 'kysely';

/**
 * Statistics of the folded text (`lower(column)`) that queries compare, where no index on it keeps
 * them already: without them the planner takes `lower(firmware_version) = …` to hold for 0.5 % of
 * the devices and a range (startsWith) for about as few, whatever the data. The store asks that
 * estimate to choose how a job query finds a device condition's jobs (src/store/sql/filters.ts):
 * firmware_version = '24.9.79' (20 % of 100,000 devices) was taken for 500 devices.
 */
const FOLDED_TEXT = {
  devices: [
    'name',
    'type',
    'firmware_version',
    'serial_number',
    'mac',
    'ip',
    'public_ip',
    'description',
    'notes',
    'contact',
    'location',
    'carrier',
    'carrier2',
    'network',
    'network2',
  ],
  jobs: ['description', 'abort_reason'],
} as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [table, columns] of Object.entries(FOLDED_TEXT)) {
    for (const column of columns) {
      await sql`CREATE STATISTICS ${sql.id(`${table}_${column}_folded`)} ON (lower(${sql.ref(column)})) FROM ${sql.table(table)}`.execute(
        db,
      );
    }
    // Gathered now rather than at autovacuum's next ANALYZE of a table that may change little.
    await sql`ANALYZE ${sql.table(table)}`.execute(db);
  }
}
