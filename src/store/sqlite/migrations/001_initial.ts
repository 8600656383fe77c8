import { type Kysely, sql } from 'kysely';

/**
 * Timestamps are INTEGER epoch milliseconds. Devices have a surrogate `pk` that job targets refer
 * to, so a deleted device's targets keep their `device_id` but no longer match a device registered
 * again under the same id. Text columns compare by code point (SQLite's BINARY collation).
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  const statements = [
    sql`CREATE TABLE settings (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) STRICT`,
    sql`CREATE TABLE accounts (
      id INTEGER PRIMARY KEY,
      name TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL
    ) STRICT`,
    sql`CREATE TABLE users (
      id INTEGER PRIMARY KEY,
      account_id INTEGER NOT NULL REFERENCES accounts(id),
      username TEXT NOT NULL UNIQUE,
      password_hash TEXT NOT NULL,
      role TEXT NOT NULL CHECK (role IN ('admin', 'user', 'read_only')),
      created_at INTEGER NOT NULL
    ) STRICT`,
    sql`CREATE INDEX users_account ON users(account_id)`,
    sql`CREATE TABLE api_keys (
      id TEXT PRIMARY KEY,
      user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
      secret_hash TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT`,
    sql`CREATE INDEX api_keys_user ON api_keys(user_id)`,
    sql`CREATE TABLE devices (
      pk INTEGER PRIMARY KEY AUTOINCREMENT,
      id TEXT NOT NULL UNIQUE,
      customer_id INTEGER NOT NULL REFERENCES accounts(id),
      vendor_id INTEGER,
      name TEXT, type TEXT, firmware_version TEXT, serial_number TEXT, mac TEXT, ip TEXT, public_ip TEXT,
      description TEXT, notes TEXT, contact TEXT, location TEXT,
      carrier TEXT, carrier2 TEXT, network TEXT, network2 TEXT,
      group_path TEXT NOT NULL DEFAULT '',
      tags TEXT NOT NULL DEFAULT '[]',
      connection_status TEXT NOT NULL DEFAULT 'disconnected',
      health_status TEXT NOT NULL DEFAULT 'unknown',
      restricted_status TEXT NOT NULL DEFAULT 'unrestricted',
      signal_percent REAL, signal_percent2 REAL, signal_quality REAL, signal_quality2 REAL,
      signal_strength REAL, signal_strength2 REAL,
      last_connect INTEGER, last_disconnect INTEGER, last_update INTEGER,
      token_hash TEXT NOT NULL
    ) STRICT`,
    sql`CREATE INDEX devices_customer_id ON devices(customer_id, id)`,
    sql`CREATE INDEX devices_group ON devices(customer_id, lower(group_path))`,
    sql`CREATE TABLE device_tags (
      device_pk INTEGER NOT NULL REFERENCES devices(pk) ON DELETE CASCADE,
      tag TEXT NOT NULL,
      PRIMARY KEY (device_pk, tag)
    ) STRICT, WITHOUT ROWID`,
    sql`CREATE INDEX device_tags_tag ON device_tags(lower(tag), device_pk)`,
    sql`CREATE TABLE jobs (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      customer_id INTEGER NOT NULL REFERENCES accounts(id),
      username TEXT NOT NULL,
      job_type TEXT NOT NULL,
      job_status TEXT NOT NULL,
      description TEXT,
      job_submit_time INTEGER NOT NULL,
      job_completion_time INTEGER,
      target_count INTEGER NOT NULL,
      progress_success INTEGER NOT NULL DEFAULT 0,
      progress_failures INTEGER NOT NULL DEFAULT 0,
      progress_canceled INTEGER NOT NULL DEFAULT 0,
      progress_pending INTEGER NOT NULL DEFAULT 0,
      payload TEXT,
      timeout INTEGER NOT NULL,
      offline_timeout INTEGER NOT NULL,
      targets TEXT NOT NULL
    ) STRICT`,
    sql`CREATE INDEX jobs_customer ON jobs(customer_id, id)`,
    sql`CREATE INDEX jobs_status ON jobs(customer_id, job_status, id)`,
    sql`CREATE INDEX jobs_username ON jobs(customer_id, username, id)`,
    sql`CREATE INDEX jobs_submit_time ON jobs(customer_id, job_submit_time, id)`,
    sql`CREATE INDEX jobs_new ON jobs(id) WHERE job_status = 'new'`,
    sql`CREATE TABLE job_targets (
      job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
      device_id TEXT NOT NULL,
      device_pk INTEGER REFERENCES devices(pk) ON DELETE SET NULL,
      status TEXT NOT NULL DEFAULT 'queued',
      progress INTEGER NOT NULL DEFAULT 0,
      message TEXT,
      response TEXT,
      queued_time INTEGER NOT NULL,
      start_time INTEGER,
      end_time INTEGER,
      deadline INTEGER,
      cancel_requested INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (job_id, device_id)
    ) STRICT, WITHOUT ROWID`,
    sql`CREATE INDEX job_targets_device ON job_targets(device_pk, job_id)`,
    sql`CREATE INDEX job_targets_pending ON job_targets(deadline) WHERE status IN ('queued', 'in_progress')`,
  ];
  for (const statement of statements) await statement.execute(db);
}
