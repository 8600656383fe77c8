/**
 * An in-memory SQLite database with the store's migrations, for the SQL compiler's tests: load a
 * data set of devices, jobs and targets straight into the tables, and run compiled predicates.
 */
import BetterSqlite3 from 'better-sqlite3';
import { type Insertable, Kysely, Migrator, type RawBuilder, SqliteDialect, sql } from 'kysely';
import type { Device } from '../../src/model/device.js';
import type { Job, JobTarget } from '../../src/model/job.js';
import { openPostgresDatabase } from '../../src/store/postgres/database.js';
import { postgresDialect } from '../../src/store/postgres/dialect.js';
import type { SqlDialect } from '../../src/store/sql/dialect.js';
import { DEVICE_COLUMNS } from '../../src/store/sql/rows.js';
import type { Database } from '../../src/store/sql/schema.js';
import { sqliteDialect } from '../../src/store/sqlite/dialect.js';
import { migrations } from '../../src/store/sqlite/migrations/index.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { TEST_ENGINE } from '../setup/stores.js';

export const ACCOUNT = 1;

export interface StoredTarget {
  target: JobTarget;
  /** Index into the data set's devices; null for a deleted device. */
  device: number | null;
}

export interface Dataset {
  devices: Device[];
  jobs: { job: Job; targets: StoredTarget[] }[];
}

export interface TestDatabase {
  db: Kysely<unknown>;
  /** Replaces every device, job and target with `dataset` (device pk = index + 1). */
  load(dataset: Dataset): void;
  /** Runs `query` (compiled by kysely for SQLite) and returns its rows. */
  rows<T>(query: RawBuilder<unknown>): T[];
  /** How many rows each table holds. */
  counts(): Record<string, number>;
  close(): Promise<void>;
}

export async function openTestDatabase(): Promise<TestDatabase> {
  const raw = new BetterSqlite3(':memory:');
  raw.pragma('foreign_keys = ON');
  const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: raw }) });
  const { error } = await new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
  }).migrateToLatest();
  if (error) throw error;
  raw.prepare("INSERT INTO accounts (id, name, created_at) VALUES (?, 'test', 0)").run(ACCOUNT);
  const insertDevice = raw.prepare(`INSERT INTO devices (pk, id, customer_id, vendor_id, name, type,
    firmware_version, serial_number, mac, ip, public_ip, description, notes, contact, location, carrier,
    carrier2, network, network2, group_path, tags, connection_status, health_status, restricted_status,
    signal_percent, signal_percent2, signal_quality, signal_quality2, signal_strength, signal_strength2,
    last_connect, last_disconnect, last_update, token_hash)
    VALUES (@pk, @id, @customer_id, @vendor_id, @name, @type, @firmware_version, @serial_number, @mac, @ip,
    @public_ip, @description, @notes, @contact, @location, @carrier, @carrier2, @network, @network2,
    @group_path, @tags_json, @connection_status, @health_status, @restricted_status, @signal_percent,
    @signal_percent2, @signal_quality, @signal_quality2, @signal_strength, @signal_strength2,
    @last_connect, @last_disconnect, @last_update, 'hash')`);
  const insertTag = raw.prepare('INSERT INTO device_tags (device_pk, tag) VALUES (?, ?)');
  const insertJob = raw.prepare(`INSERT INTO jobs (id, customer_id, username, job_type, job_status,
    description, job_submit_time, job_completion_time, target_count, progress_success, progress_failures,
    progress_canceled, progress_pending, rollout_state, abort_reason, timeout, offline_timeout, targets)
    VALUES (@id, @customer_id, @username, @job_type, @job_status, @description, @job_submit_time,
    @job_completion_time, @target_count, @progress_success, @progress_failures, @progress_canceled,
    @progress_pending, @rollout_state, @abort_reason, 600, 86400, '{}')`);
  const insertTarget = raw.prepare(`INSERT INTO job_targets (job_id, device_id, device_pk, status, progress,
    message, queued_time, start_time, end_time, attempt, next_attempt_time) VALUES (@job_id, @device_id,
    @device_pk, @status, @progress, @message, @queued_time, @start_time, @end_time, @attempt, @next_attempt_time)`);
  const load = raw.transaction((dataset: Dataset) => {
    raw.exec('DELETE FROM job_targets; DELETE FROM jobs; DELETE FROM device_tags; DELETE FROM devices;');
    dataset.devices.forEach((device, index) => {
      insertDevice.run({
        ...device,
        pk: index + 1,
        group_path: device.group,
        tags_json: JSON.stringify(device.tags),
      });
      for (const tag of device.tags) insertTag.run(index + 1, tag);
    });
    for (const { job, targets } of dataset.jobs) {
      insertJob.run(job);
      for (const { target, device } of targets) {
        const { response: _response, ...row } = target;
        insertTarget.run({ ...row, device_pk: device === null ? null : device + 1 });
      }
    }
  });
  return {
    db,
    load: (dataset) => load(dataset),
    rows: <T>(query: RawBuilder<unknown>) => {
      const compiled = query.compile(db);
      return raw.prepare(compiled.sql).all(...compiled.parameters) as T[];
    },
    counts: () =>
      Object.fromEntries(
        ['accounts', 'devices', 'device_tags', 'jobs', 'job_targets'].map((table) => [
          table,
          (raw.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n,
        ]),
      ),
    close: () => db.destroy(),
  };
}

/** The same, on the engine of the test project (test/setup/stores.ts), every call a promise. */
export interface EngineTestDatabase {
  db: Kysely<unknown>;
  dialect: SqlDialect;
  load(dataset: Dataset): Promise<void>;
  rows<T>(query: RawBuilder<unknown>): Promise<T[]>;
  close(): Promise<void>;
}

export async function openEngineTestDatabase(): Promise<EngineTestDatabase> {
  if (TEST_ENGINE === 'sqlite') {
    const database = await openTestDatabase();
    return {
      db: database.db,
      dialect: sqliteDialect,
      load: async (dataset) => database.load(dataset),
      rows: async (query) => database.rows(query),
      close: () => database.close(),
    };
  }
  const db = (await openPostgresDatabase(await newPostgresDatabase())) as unknown as Kysely<Database>;
  await db.insertInto('accounts').values({ id: ACCOUNT, name: 'test', created_at: 0 }).execute();
  return {
    db: db as unknown as Kysely<unknown>,
    dialect: postgresDialect,
    load: (dataset) =>
      db.transaction().execute(async (trx) => {
        await sql`DELETE FROM job_targets; DELETE FROM jobs; DELETE FROM device_tags; DELETE FROM devices`.execute(
          trx,
        );
        const devices = dataset.devices.map((device, index) => ({
          ...Object.fromEntries(
            DEVICE_COLUMNS.map((column) => [
              column,
              column === 'group_path'
                ? device.group
                : column === 'tags'
                  ? JSON.stringify(device.tags)
                  : device[column],
            ]),
          ),
          pk: index + 1,
          token_hash: 'hash',
        })) as Insertable<Database['devices']>[];
        if (devices.length > 0) await trx.insertInto('devices').values(devices).execute();
        const tags = dataset.devices.flatMap((device, index) =>
          [...new Set(device.tags)].map((tag) => ({ device_pk: index + 1, tag })),
        );
        if (tags.length > 0) await trx.insertInto('device_tags').values(tags).execute();
        const jobs = dataset.jobs.map(({ job }) => ({
          ...job,
          timeout: 600,
          offline_timeout: 86400,
          targets: '{}',
        }));
        if (jobs.length > 0) await trx.insertInto('jobs').values(jobs).execute();
        const targets = dataset.jobs.flatMap(({ targets }) =>
          targets.map(({ target: { response: _response, ...target }, device }) => ({
            ...target,
            device_pk: device === null ? null : device + 1,
          })),
        );
        if (targets.length > 0) await trx.insertInto('job_targets').values(targets).execute();
      }),
    rows: async <T>(query: RawBuilder<unknown>) => (await query.execute(db)).rows as T[],
    close: () => db.destroy(),
  };
}
