import { type Kysely, sql } from 'kysely';

/**
 * The event outbox and the monitors (CONTRACT §10). `events` gets one row per change of a job, a
 * target or a device, written in the transaction of the change; `event_sequence` hands out their
 * ids in commit order (src/store/sql/events.ts). A monitor row holds its settings and its delivery
 * state: the last event done, the retry schedule and the lease of the node that sends its batches.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE events (
      id INTEGER PRIMARY KEY,
      uuid TEXT NOT NULL,
      customer_id INTEGER NOT NULL,
      topic TEXT NOT NULL,
      object_key TEXT NOT NULL,
      job_id INTEGER,
      operation TEXT NOT NULL,
      time INTEGER NOT NULL,
      data TEXT NOT NULL
    ) STRICT`,
    sql`CREATE INDEX events_customer ON events(customer_id, id)`,
    sql`CREATE TABLE event_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last_id INTEGER NOT NULL) STRICT`,
    sql`CREATE TABLE monitors (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      customer_id INTEGER NOT NULL REFERENCES accounts(id),
      type TEXT NOT NULL,
      topics TEXT NOT NULL,
      url TEXT NOT NULL,
      method TEXT NOT NULL,
      format TEXT NOT NULL,
      auth_token TEXT,
      headers TEXT NOT NULL,
      batch_size INTEGER NOT NULL,
      batch_duration INTEGER NOT NULL,
      compression TEXT NOT NULL,
      persistent INTEGER NOT NULL,
      secret TEXT,
      description TEXT,
      status TEXT NOT NULL,
      last_sent INTEGER,
      last_sent_uuid TEXT,
      created_at INTEGER NOT NULL,
      cursor_id INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at INTEGER,
      failing_since INTEGER,
      lease_owner TEXT,
      lease_until INTEGER
    ) STRICT`,
    sql`CREATE INDEX monitors_customer ON monitors(customer_id, id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
