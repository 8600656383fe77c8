import { type Kysely, sql } from 'kysely';

/** As SQLite's 006_cluster: nodes and their heartbeat, job claims, device topic spelling and presence time. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE nodes (
      id TEXT COLLATE "C" PRIMARY KEY,
      broker TEXT NOT NULL,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      started_at BIGINT NOT NULL,
      heartbeat_at BIGINT NOT NULL
    )`,
    sql`ALTER TABLE jobs ADD COLUMN claimed_by TEXT COLLATE "C"`,
    sql`ALTER TABLE jobs ADD COLUMN claim_expires BIGINT`,
    // both partial: only the jobs some node fans out (its heartbeat; expired claims)
    sql`CREATE INDEX jobs_claimed ON jobs (claimed_by) WHERE claimed_by IS NOT NULL`,
    sql`CREATE INDEX jobs_claim_expiry ON jobs (claim_expires) WHERE claimed_by IS NOT NULL`,
    // the unfinished jobs a node that died may have left statuses of unread
    sql`CREATE INDEX jobs_in_progress ON jobs (id) WHERE job_status = 'in_progress'`,
    sql`ALTER TABLE devices ADD COLUMN topic_id TEXT`,
    sql`ALTER TABLE devices ADD COLUMN presence_at BIGINT`,
  ];
  for (const statement of statements) await statement.execute(db);
}
