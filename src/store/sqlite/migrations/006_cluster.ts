import { type Kysely, sql } from 'kysely';

/**
 * Several nodes on one store (CONTRACT §8): the nodes alive (their heartbeat), which node fans a
 * job out and until when (a dead node's claim expires and another takes it over), and per device
 * the topic spelling it connected with and the time of the presence message last applied (a late
 * one, handled on another node, is older and changes nothing).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE nodes (
      id TEXT PRIMARY KEY,
      broker TEXT NOT NULL,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      started_at INTEGER NOT NULL,
      heartbeat_at INTEGER NOT NULL
    )`,
    sql`ALTER TABLE jobs ADD COLUMN claimed_by TEXT`,
    sql`ALTER TABLE jobs ADD COLUMN claim_expires INTEGER`,
    // both partial: only the jobs some node fans out (its heartbeat; expired claims)
    sql`CREATE INDEX jobs_claimed ON jobs (claimed_by) WHERE claimed_by IS NOT NULL`,
    sql`CREATE INDEX jobs_claim_expiry ON jobs (claim_expires) WHERE claimed_by IS NOT NULL`,
    // the unfinished jobs a node that died may have left statuses of unread
    sql`CREATE INDEX jobs_in_progress ON jobs (id) WHERE job_status = 'in_progress'`,
    sql`ALTER TABLE devices ADD COLUMN topic_id TEXT`,
    sql`ALTER TABLE devices ADD COLUMN presence_at INTEGER`,
  ];
  for (const statement of statements) await statement.execute(db);
}
