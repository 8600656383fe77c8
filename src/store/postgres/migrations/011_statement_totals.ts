import { type Kysely, sql } from 'kysely';

/**
 * The store totals of 002 kept by statement triggers: one UPDATE of `store_totals` per statement,
 * from its transition tables, instead of one per changed row. PostgreSQL keeps every version of a
 * row a transaction updates, and each update walks the versions before it: a service starting after
 * downtime marks 70,000 devices disconnected in one statement, and that took 105 s with the row
 * trigger (bench/deadline-backlog.ts), each timeout batch 0.2–2 s. SQLite updates in place and
 * keeps its row triggers (004_store_totals).
 */

/** The totals a set of job rows adds (`sign` 1) or takes away (-1). */
const jobShares = (rows: string, sign: number) => `
  SELECT 'jobs:' || job_status AS name, ${sign}::bigint AS delta FROM ${rows}
  UNION ALL SELECT 'targets:successful', ${sign} * progress_success FROM ${rows}
  UNION ALL SELECT 'targets:failed', ${sign} * progress_failures FROM ${rows}
  UNION ALL SELECT 'targets:canceled', ${sign} * progress_canceled FROM ${rows}
  UNION ALL SELECT 'targets:pending', ${sign} * progress_pending FROM ${rows}`;

const deviceShares = (rows: string, sign: number) => `
  SELECT 'devices:connected' AS name, ${sign}::bigint AS delta FROM ${rows}
  WHERE connection_status = 'connected'`;

/** A trigger function adding the summed shares to the totals, in one UPDATE. */
const totalsFunction = (name: string, shares: string) =>
  sql.raw(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE store_totals t SET value = t.value + d.delta
      FROM (SELECT name, sum(delta) AS delta FROM (${shares}) s GROUP BY name) d
      WHERE t.name = d.name AND d.delta <> 0;
      RETURN NULL;
    END $$`);

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`DROP TRIGGER store_totals_jobs ON jobs`,
    sql`DROP FUNCTION store_totals_jobs()`,
    sql`DROP TRIGGER store_totals_devices ON devices`,
    sql`DROP FUNCTION store_totals_devices()`,
  ];
  for (const [table, shares] of [
    ['jobs', jobShares],
    ['devices', deviceShares],
  ] as const) {
    statements.push(
      totalsFunction(`store_totals_${table}_insert`, shares('new_rows', 1)),
      totalsFunction(
        `store_totals_${table}_update`,
        `${shares('new_rows', 1)} UNION ALL ${shares('old_rows', -1)}`,
      ),
      totalsFunction(`store_totals_${table}_delete`, shares('old_rows', -1)),
      // A trigger with transition tables has one event and no column list.
      sql.raw(`CREATE TRIGGER store_totals_${table}_insert AFTER INSERT ON ${table}
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_${table}_insert()`),
      sql.raw(`CREATE TRIGGER store_totals_${table}_update AFTER UPDATE ON ${table}
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION store_totals_${table}_update()`),
      sql.raw(`CREATE TRIGGER store_totals_${table}_delete AFTER DELETE ON ${table}
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION store_totals_${table}_delete()`),
    );
  }
  for (const statement of statements) await statement.execute(db);
}
