import { type Kysely, sql } from 'kysely';

/**
 * Rollouts (CONTRACT §9): the controls of a job as submitted, its rollout state, the pace shared by
 * every node (next_send_at, send_seq), the counts the rules read, and a target's attempts.
 * job_targets_job_status finds a job's queued or in-progress targets without reading the others
 * (covering what the rollout tick selects of them, so SQLite's planner takes it);
 * jobs_rollout the few jobs the rollout tick looks at.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`ALTER TABLE jobs ADD COLUMN rollout TEXT`,
    sql`ALTER TABLE jobs ADD COLUMN abort_rules TEXT`,
    sql`ALTER TABLE jobs ADD COLUMN retry TEXT`,
    sql`ALTER TABLE jobs ADD COLUMN schedule TEXT`,
    sql`ALTER TABLE jobs ADD COLUMN rollout_state TEXT NOT NULL DEFAULT 'running'`,
    sql`ALTER TABLE jobs ADD COLUMN abort_reason TEXT`,
    sql`ALTER TABLE jobs ADD COLUMN governed INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE jobs ADD COLUMN rollout_active INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE jobs ADD COLUMN next_send_at INTEGER`,
    sql`ALTER TABLE jobs ADD COLUMN send_seq INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE jobs ADD COLUMN notified_count INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE jobs ADD COLUMN progress_timed_out INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE jobs ADD COLUMN fired_rules INTEGER NOT NULL DEFAULT 0`,
    sql`UPDATE jobs SET rollout_state = 'done' WHERE job_status IN ('complete', 'failed', 'canceled')`,
    sql`ALTER TABLE job_targets ADD COLUMN attempt INTEGER NOT NULL DEFAULT 0`,
    sql`ALTER TABLE job_targets ADD COLUMN next_attempt_time INTEGER`,
    sql`UPDATE job_targets SET attempt = 1 WHERE start_time IS NOT NULL`,
    sql`CREATE INDEX job_targets_job_status ON job_targets(job_id, status, device_id, next_attempt_time, device_pk, attempt)`,
    sql`CREATE INDEX jobs_rollout ON jobs(id) WHERE rollout_active = 1`,
    sql`CREATE INDEX jobs_rollout_state ON jobs(customer_id, rollout_state, id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
