import { type Kysely, sql } from 'kysely';

/**
 * Store-wide totals kept by triggers, as SQLite's 004_store_totals: `jobs:<status>`,
 * `targets:<bucket>` (from the jobs' progress counters) and `devices:connected`, so that /metrics
 * reads a handful of rows instead of counting every job per scrape.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE store_totals (name TEXT COLLATE "C" PRIMARY KEY, value BIGINT NOT NULL)`,
    sql`INSERT INTO store_totals (name, value)
      SELECT 'jobs:' || s.status, (SELECT count(*) FROM jobs WHERE job_status = s.status)
      FROM (VALUES ('new'), ('in_progress'), ('complete'), ('failed'), ('canceled')) AS s(status)`,
    sql`INSERT INTO store_totals (name, value)
      SELECT 'targets:successful', coalesce(sum(progress_success), 0) FROM jobs
      UNION ALL SELECT 'targets:failed', coalesce(sum(progress_failures), 0) FROM jobs
      UNION ALL SELECT 'targets:canceled', coalesce(sum(progress_canceled), 0) FROM jobs
      UNION ALL SELECT 'targets:pending', coalesce(sum(progress_pending), 0) FROM jobs
      UNION ALL SELECT 'devices:connected', count(*) FROM devices WHERE connection_status = 'connected'`,
    // One function for jobs: OLD's share is taken away and NEW's added, whichever the operation.
    sql`CREATE FUNCTION store_totals_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP <> 'INSERT' THEN
          UPDATE store_totals SET value = value - CASE name
            WHEN 'jobs:' || OLD.job_status THEN 1
            WHEN 'targets:successful' THEN OLD.progress_success
            WHEN 'targets:failed' THEN OLD.progress_failures
            WHEN 'targets:canceled' THEN OLD.progress_canceled
            WHEN 'targets:pending' THEN OLD.progress_pending END
          WHERE name IN ('jobs:' || OLD.job_status, 'targets:successful', 'targets:failed',
                         'targets:canceled', 'targets:pending');
        END IF;
        IF TG_OP <> 'DELETE' THEN
          UPDATE store_totals SET value = value + CASE name
            WHEN 'jobs:' || NEW.job_status THEN 1
            WHEN 'targets:successful' THEN NEW.progress_success
            WHEN 'targets:failed' THEN NEW.progress_failures
            WHEN 'targets:canceled' THEN NEW.progress_canceled
            WHEN 'targets:pending' THEN NEW.progress_pending END
          WHERE name IN ('jobs:' || NEW.job_status, 'targets:successful', 'targets:failed',
                         'targets:canceled', 'targets:pending');
        END IF;
        RETURN NULL;
      END $$`,
    sql`CREATE TRIGGER store_totals_jobs AFTER INSERT OR DELETE OR UPDATE OF
        job_status, progress_success, progress_failures, progress_canceled, progress_pending
        ON jobs FOR EACH ROW EXECUTE FUNCTION store_totals_jobs()`,
    sql`CREATE FUNCTION store_totals_devices() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        delta INTEGER := 0;
      BEGIN
        IF TG_OP <> 'INSERT' AND OLD.connection_status = 'connected' THEN delta := delta - 1; END IF;
        IF TG_OP <> 'DELETE' AND NEW.connection_status = 'connected' THEN delta := delta + 1; END IF;
        IF delta <> 0 THEN
          UPDATE store_totals SET value = value + delta WHERE name = 'devices:connected';
        END IF;
        RETURN NULL;
      END $$`,
    sql`CREATE TRIGGER store_totals_devices AFTER INSERT OR DELETE OR UPDATE OF connection_status
        ON devices FOR EACH ROW EXECUTE FUNCTION store_totals_devices()`,
  ];
  for (const statement of statements) await statement.execute(db);
}
