import { type Kysely, sql } from 'kysely';

/**
 * Store-wide totals kept by triggers, so that /metrics reads a handful of rows instead of counting
 * 1,000,000 jobs (a second) per scrape: `jobs:<status>`, `targets:<bucket>` (from the jobs'
 * progress counters) and `devices:connected`. Each row change adjusts them in its own transaction.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE store_totals (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT, WITHOUT ROWID`,
    sql`INSERT INTO store_totals (name, value)
      SELECT 'jobs:' || s.status, (SELECT count(*) FROM jobs WHERE job_status = s.status)
      FROM (SELECT 'new' AS status UNION ALL SELECT 'in_progress' UNION ALL SELECT 'complete'
            UNION ALL SELECT 'failed' UNION ALL SELECT 'canceled') s`,
    sql`INSERT INTO store_totals (name, value)
      SELECT 'targets:successful', coalesce(sum(progress_success), 0) FROM jobs
      UNION ALL SELECT 'targets:failed', coalesce(sum(progress_failures), 0) FROM jobs
      UNION ALL SELECT 'targets:canceled', coalesce(sum(progress_canceled), 0) FROM jobs
      UNION ALL SELECT 'targets:pending', coalesce(sum(progress_pending), 0) FROM jobs
      UNION ALL SELECT 'devices:connected', count(*) FROM devices WHERE connection_status = 'connected'`,
    sql`CREATE TRIGGER store_totals_job_insert AFTER INSERT ON jobs BEGIN
      UPDATE store_totals SET value = value + CASE name
        WHEN 'jobs:' || NEW.job_status THEN 1
        WHEN 'targets:successful' THEN NEW.progress_success
        WHEN 'targets:failed' THEN NEW.progress_failures
        WHEN 'targets:canceled' THEN NEW.progress_canceled
        WHEN 'targets:pending' THEN NEW.progress_pending END
      WHERE name IN ('jobs:' || NEW.job_status, 'targets:successful', 'targets:failed',
                     'targets:canceled', 'targets:pending');
    END`,
    sql`CREATE TRIGGER store_totals_job_delete AFTER DELETE ON jobs BEGIN
      UPDATE store_totals SET value = value - CASE name
        WHEN 'jobs:' || OLD.job_status THEN 1
        WHEN 'targets:successful' THEN OLD.progress_success
        WHEN 'targets:failed' THEN OLD.progress_failures
        WHEN 'targets:canceled' THEN OLD.progress_canceled
        WHEN 'targets:pending' THEN OLD.progress_pending END
      WHERE name IN ('jobs:' || OLD.job_status, 'targets:successful', 'targets:failed',
                     'targets:canceled', 'targets:pending');
    END`,
    sql`CREATE TRIGGER store_totals_job_update AFTER UPDATE OF
        job_status, progress_success, progress_failures, progress_canceled, progress_pending ON jobs BEGIN
      UPDATE store_totals SET value = value
        + (name = 'jobs:' || NEW.job_status) - (name = 'jobs:' || OLD.job_status)
        + CASE name
            WHEN 'targets:successful' THEN NEW.progress_success - OLD.progress_success
            WHEN 'targets:failed' THEN NEW.progress_failures - OLD.progress_failures
            WHEN 'targets:canceled' THEN NEW.progress_canceled - OLD.progress_canceled
            WHEN 'targets:pending' THEN NEW.progress_pending - OLD.progress_pending
            ELSE 0 END
      WHERE name IN ('jobs:' || NEW.job_status, 'jobs:' || OLD.job_status, 'targets:successful',
                     'targets:failed', 'targets:canceled', 'targets:pending');
    END`,
    sql`CREATE TRIGGER store_totals_device_insert AFTER INSERT ON devices
      WHEN NEW.connection_status = 'connected' BEGIN
      UPDATE store_totals SET value = value + 1 WHERE name = 'devices:connected';
    END`,
    sql`CREATE TRIGGER store_totals_device_delete AFTER DELETE ON devices
      WHEN OLD.connection_status = 'connected' BEGIN
      UPDATE store_totals SET value = value - 1 WHERE name = 'devices:connected';
    END`,
    sql`CREATE TRIGGER store_totals_device_update AFTER UPDATE OF connection_status ON devices
      WHEN NEW.connection_status IS NOT OLD.connection_status BEGIN
      UPDATE store_totals SET value = value + (NEW.connection_status = 'connected')
        - (OLD.connection_status = 'connected') WHERE name = 'devices:connected';
    END`,
  ];
  for (const statement of statements) await statement.execute(db);
}
