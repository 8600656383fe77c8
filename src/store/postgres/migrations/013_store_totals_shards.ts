import { type Kysely, sql } from 'kysely';

/**
 * Store totals in shards: each of 002's totals becomes up to TOTAL_SHARDS rows, and a trigger adds
 * to the row of its connection's shard (its backend's process id, modulo). With one row per total,
 * every transaction creating, cancelling or settling a job updated the same few rows and held
 * them until it committed, so write transactions ran one after another across every connection
 * and node: under bench/load.ts's mix on PostgreSQL, creates waited seconds on those row locks and
 * the pool filled with them (16–17 requests/s, 223–236 timeouts in 20 s). Readers add the shards
 * up (src/store/sql/totals.ts).
 */
const TOTAL_SHARDS = 64;

export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`ALTER TABLE store_totals ADD COLUMN shard INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE store_totals DROP CONSTRAINT store_totals_pkey`,
    sql`ALTER TABLE store_totals ADD PRIMARY KEY (name, shard)`,
    sql.raw(`CREATE FUNCTION store_totals_add(total TEXT, delta BIGINT) RETURNS void LANGUAGE sql AS $$
      INSERT INTO store_totals (name, shard, value) VALUES (total, pg_backend_pid() % ${TOTAL_SHARDS}, delta)
      ON CONFLICT (name, shard) DO UPDATE SET value = store_totals.value + EXCLUDED.value
    $$`),
    // OLD is NULL on INSERT, NEW on DELETE: their rows drop out. Each total changes by its net delta,
    // in the order of its name (two connections sharing a shard lock its rows in one order).
    sql`CREATE OR REPLACE FUNCTION store_totals_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM store_totals_add(total, delta) FROM (
          SELECT total, sum(delta)::bigint AS delta FROM (VALUES
            ('jobs:' || OLD.job_status, -1), ('jobs:' || NEW.job_status, 1),
            ('targets:successful', -OLD.progress_success), ('targets:successful', NEW.progress_success),
            ('targets:failed', -OLD.progress_failures), ('targets:failed', NEW.progress_failures),
            ('targets:canceled', -OLD.progress_canceled), ('targets:canceled', NEW.progress_canceled),
            ('targets:pending', -OLD.progress_pending), ('targets:pending', NEW.progress_pending)
          ) AS changes(total, delta)
          WHERE total IS NOT NULL AND delta IS NOT NULL
          GROUP BY total HAVING sum(delta) <> 0 ORDER BY total
        ) AS net;
        RETURN NULL;
      END $$`,
    sql`CREATE OR REPLACE FUNCTION store_totals_devices() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        delta INTEGER := 0;
      BEGIN
        IF TG_OP <> 'INSERT' AND OLD.connection_status = 'connected' THEN delta := delta - 1; END IF;
        IF TG_OP <> 'DELETE' AND NEW.connection_status = 'connected' THEN delta := delta + 1; END IF;
        IF delta <> 0 THEN
          PERFORM store_totals_add('devices:connected', delta);
        END IF;
        RETURN NULL;
      END $$`,
  ];
  for (const statement of statements) await statement.execute(db);
}
