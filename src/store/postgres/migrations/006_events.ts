import { type Kysely, sql } from 'kysely';

/** The event outbox and the monitors, as SQLite's 008_events. */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE events (
      id BIGINT PRIMARY KEY,
      uuid TEXT COLLATE "C" NOT NULL,
      customer_id BIGINT NOT NULL,
      topic TEXT COLLATE "C" NOT NULL,
      object_key TEXT COLLATE "C" NOT NULL,
      job_id BIGINT,
      operation TEXT COLLATE "C" NOT NULL,
      time BIGINT NOT NULL,
      data TEXT NOT NULL
    )`,
    sql`CREATE INDEX events_customer ON events(customer_id, id)`,
    sql`CREATE TABLE event_sequence (id INTEGER PRIMARY KEY CHECK (id = 1), last_id BIGINT NOT NULL)`,
    sql`CREATE TABLE monitors (
      id BIGSERIAL PRIMARY KEY,
      customer_id BIGINT NOT NULL REFERENCES accounts(id),
      type TEXT COLLATE "C" NOT NULL,
      topics TEXT NOT NULL,
      url TEXT NOT NULL,
      method TEXT COLLATE "C" NOT NULL,
      format TEXT COLLATE "C" NOT NULL,
      auth_token TEXT,
      headers TEXT NOT NULL,
      batch_size INTEGER NOT NULL,
      batch_duration INTEGER NOT NULL,
      compression TEXT COLLATE "C" NOT NULL,
      persistent INTEGER NOT NULL,
      secret TEXT,
      description TEXT COLLATE "C",
      status TEXT COLLATE "C" NOT NULL,
      last_sent BIGINT,
      last_sent_uuid TEXT,
      created_at BIGINT NOT NULL,
      cursor_id BIGINT NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0,
      next_attempt_at BIGINT,
      failing_since BIGINT,
      lease_owner TEXT,
      lease_until BIGINT
    )`,
    sql`CREATE INDEX monitors_customer ON monitors(customer_id, id)`,
  ];
  for (const statement of statements) await statement.execute(db);
}
