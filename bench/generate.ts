/**
 * A seeded, reproducible fleet in a SQLite file for the benchmarks: 100,000 devices, 1,000,000 jobs
 * and 3,000,000 job targets in one account, with the migrations' schema. The file is cached under
 * bench/data/ and built again only when it is missing (or DATASET_VERSION changes).
 *
 * Shapes the benchmarks rely on:
 * - groups `/<Region>/<City>/<Site>`; `/NorthWest` holds 1/8 of the devices, `/NorthWestern` 2 %
 *   (so `group startsWith '/NorthWest'` also matches it), 2 % of devices have no group;
 * - 30 % disconnected, signal_percent uniform 0–100 (5 % missing);
 * - exactly RARE_DEVICE_COUNT devices match REFERENCE_QUERY and have firmware_version RARE_FIRMWARE
 *   (another 90 devices have that firmware without matching REFERENCE_QUERY);
 * - tag `sensor` on 30 % of devices, `rare-x` on exactly RARE_DEVICE_COUNT devices;
 * - 50 users (`user0`…`user49`); the newest 1 % of jobs are new or in progress, 2 % of the older
 *   ones are still in progress; every job has 1–5 targets (3 on average, exactly);
 * - 0.5 % of targets belong to deleted devices (device_pk NULL);
 * - planner statistics (ANALYZE), as a store in service keeps them (PRAGMA optimize).
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { openSqliteDatabase } from '../src/store/sqlite/database.js';

export const DATASET_VERSION = 2;
export const SEED = 20261128;
export const DEVICE_COUNT = 100_000;
export const JOB_COUNT = 1_000_000;
export const TARGET_COUNT = 3_000_000;
export const ACCOUNT_ID = 1;
/** The dataset's "now": job submit times and device timestamps lie in the year before it. */
export const DATASET_NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
export const REFERENCE_QUERY =
  "group startsWith '/NorthWest' and (connection_status = 'disconnected' or signal_percent < 20)";
export const RARE_FIRMWARE = '9.9.9-rare';
export const RARE_DEVICE_COUNT = 10;
export const RARE_TAG = 'rare-x';
export const COMMON_TAG = 'sensor';

const DATA_DIR = join(dirname(fileURLToPath(import.meta.url)), 'data');
export const datasetPath = (): string => join(DATA_DIR, `fleet-v${DATASET_VERSION}-seed${SEED}.db`);

/** mulberry32: small, fast and good enough for test data. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const chance = (random: Random, probability: number): boolean => random() < probability;
const shuffle = (random: Random, items: number[]): void => {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as number, items[i] as number];
  }
};
const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
const deviceId = (n: number): string => `00000000-00000000-0004F3FF-${hex8(n)}`;

const REGIONS = ['NorthEast', 'SouthWest', 'SouthEast', 'Central', 'Mountain', 'Pacific', 'Plains'] as const;
const CITIES = ['Seattle', 'Portland', 'Boise', 'Spokane', 'Zürich', 'Tacoma'] as const;
const TYPES = ['TX64', 'IX20', 'EX15', 'LR54', 'IX30'] as const;
const FIRMWARE = ['21.2.1', '22.5.50', '23.8.1', '24.3.28', '24.9.79'] as const;
const CARRIERS = ['Verizon', 'AT&T', 'T-Mobile', 'Telefónica'] as const;
const NETWORKS = ['LTE', '5G', '3G'] as const;
const OTHER_TAGS = ['important', 'gateway', 'Outdoor', 'café', 'pump'] as const;
const JOB_TYPES = [
  'send_message',
  'update_firmware',
  'reboot',
  'file_system',
  'data_service',
  'command',
] as const;
const USER_COUNT = 50;
const DAY = 86_400_000;

interface GeneratedDevice {
  group: string;
  disconnected: boolean;
  signal: number | null;
}

function deviceGroup(random: Random): string {
  const roll = random();
  if (roll < 0.02) return '';
  if (roll < 0.04) return `/NorthWestern/${pick(random, CITIES)}`;
  const region = roll < 0.165 ? 'NorthWest' : pick(random, REGIONS);
  const depth = Math.floor(random() * 3);
  if (depth === 0) return `/${region}`;
  const city = `/${region}/${pick(random, CITIES)}`;
  return depth === 1 ? city : `${city}/Site-${String(Math.floor(random() * 20)).padStart(2, '0')}`;
}

const matchesReferenceQuery = (device: GeneratedDevice): boolean =>
  device.group.toLowerCase().startsWith('/northwest') &&
  (device.disconnected || (device.signal !== null && device.signal < 20));

function insertDevices(db: BetterSqlite3.Database, random: Random): void {
  const generated: GeneratedDevice[] = [];
  for (let i = 0; i < DEVICE_COUNT; i++) {
    generated.push({
      group: deviceGroup(random),
      disconnected: chance(random, 0.3),
      signal: chance(random, 0.05) ? null : Math.floor(random() * 101),
    });
  }
  // The rare firmware: exactly RARE_DEVICE_COUNT devices that match the reference query, 90 that do not.
  const rareFirmware = new Set<number>();
  for (let step = 0, matching = 0, other = 0; matching < RARE_DEVICE_COUNT || other < 90; step++) {
    // 7919 is prime, so the stride visits every device once, spread over the whole range.
    const i = (step * 7919) % DEVICE_COUNT;
    if (
      matchesReferenceQuery(generated[i] as GeneratedDevice) ? matching++ < RARE_DEVICE_COUNT : other++ < 90
    ) {
      rareFirmware.add(i);
    }
  }
  const insertDevice = db.prepare(`INSERT INTO devices (pk, id, customer_id, vendor_id, name, type,
    firmware_version, serial_number, mac, ip, public_ip, description, carrier, network, group_path,
    tags, connection_status, health_status, restricted_status, signal_percent, signal_strength,
    last_connect, last_disconnect, last_update, token_hash)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertTag = db.prepare('INSERT INTO device_tags (device_pk, tag) VALUES (?, ?)');
  db.transaction(() => {
    for (let i = 0; i < DEVICE_COUNT; i++) {
      const pk = i + 1;
      const device = generated[i] as GeneratedDevice;
      const tags = new Set<string>();
      if (chance(random, 0.3)) tags.add(COMMON_TAG);
      for (const tag of OTHER_TAGS) if (chance(random, 0.08)) tags.add(tag);
      if (i % (DEVICE_COUNT / RARE_DEVICE_COUNT) === 5) tags.add(RARE_TAG);
      const health = random();
      const lastConnect = DATASET_NOW - Math.floor(random() * 30 * DAY);
      insertDevice.run(
        pk,
        deviceId(pk),
        ACCOUNT_ID,
        chance(random, 0.9) ? 0xfe000002 : null,
        chance(random, 0.05) ? `Gerät ${i}` : `device-${i}`,
        pick(random, TYPES),
        rareFirmware.has(i) ? RARE_FIRMWARE : pick(random, FIRMWARE),
        `SN${String(i).padStart(7, '0')}`,
        `00:40:9D:${hex8(pk).slice(2, 4)}:${hex8(pk).slice(4, 6)}:${hex8(pk).slice(6, 8)}`,
        `10.${(pk >> 16) & 255}.${(pk >> 8) & 255}.${pk & 255}`,
        chance(random, 0.5) ? `203.0.113.${pk & 255}` : null,
        chance(random, 0.1) ? `pump station ${i % 500}` : null,
        chance(random, 0.8) ? pick(random, CARRIERS) : null,
        chance(random, 0.8) ? pick(random, NETWORKS) : null,
        device.group,
        JSON.stringify([...tags]),
        device.disconnected ? 'disconnected' : 'connected',
        health < 0.85 ? 'normal' : health < 0.93 ? 'warning' : health < 0.95 ? 'error' : 'unknown',
        chance(random, 0.97) ? 'unrestricted' : 'restricted',
        device.signal,
        device.signal === null ? null : -120 + Math.floor(random() * 70),
        lastConnect,
        device.disconnected ? lastConnect + Math.floor(random() * DAY) : null,
        lastConnect,
        'bench-token-hash',
      );
      for (const tag of tags) insertTag.run(pk, tag);
    }
  })();
}

type TargetRow = [status: string, progress: number, start: number | null, end: number | null];

function targetRow(random: Random, jobStatus: string, submit: number): TargetRow {
  const start = submit + 1_000 + Math.floor(random() * 60_000);
  const end = start + Math.floor(random() * 600_000);
  const roll = random();
  switch (jobStatus) {
    case 'new':
      return ['queued', 0, null, null];
    case 'in_progress':
      if (roll < 0.3) return ['queued', 0, null, null];
      if (roll < 0.7) return ['in_progress', Math.floor(random() * 100), start, null];
      return ['successful', 100, start, end];
    case 'failed':
      return roll < 0.8 ? ['failed', 40, start, end] : ['timed_out', 0, start, end];
    case 'canceled':
      return roll < 0.7 ? ['canceled', 0, null, end] : ['successful', 100, start, end];
    default:
      return roll < 0.95 ? ['successful', 100, start, end] : ['failed', 40, start, end];
  }
}

function jobStatus(random: Random, index: number): string {
  const roll = random();
  if (index >= JOB_COUNT * 0.99) return roll < 0.1 ? 'new' : 'in_progress';
  if (roll < 0.88) return 'complete';
  if (roll < 0.93) return 'failed';
  return roll < 0.98 ? 'canceled' : 'in_progress';
}

const BUCKETS: Record<string, 0 | 1 | 2 | 3> = {
  successful: 0,
  failed: 1,
  timed_out: 1,
  canceled: 2,
  queued: 3,
  in_progress: 3,
};

function insertJobs(db: BetterSqlite3.Database, random: Random): void {
  const insertJob = db.prepare(`INSERT INTO jobs (id, customer_id, username, job_type, job_status,
    description, job_submit_time, job_completion_time, target_count, progress_success,
    progress_failures, progress_canceled, progress_pending, payload, timeout, offline_timeout, targets)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertTarget = db.prepare(`INSERT INTO job_targets (job_id, device_id, device_pk, status,
    progress, message, queued_time, start_time, end_time, deadline) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const firstSubmit = DATASET_NOW - 365 * DAY;
  const spacing = Math.floor((365 * DAY) / JOB_COUNT);
  const BATCH = 50_000;
  const counts = [1, 2, 3, 4, 5];
  const insertBatch = db.transaction((from: number, to: number) => {
    for (let index = from; index < to; index++) {
      if (index % 5 === 0) shuffle(random, counts);
      const targetCount = counts[index % 5] as number;
      const id = index + 1;
      const status = jobStatus(random, index);
      const submit = firstSubmit + index * spacing + Math.floor(random() * spacing);
      const devices = new Set<number>();
      while (devices.size < targetCount) devices.add(1 + Math.floor(random() * DEVICE_COUNT));
      const rows = [...devices].map((pk) => {
        const deleted = chance(random, 0.005);
        return {
          id: deleted ? `DEADBEEF-00000000-0004F3FF-${hex8(pk)}` : deviceId(pk),
          pk: deleted ? null : pk,
        };
      });
      rows.sort((a, b) => (a.id < b.id ? -1 : 1));
      const progress: [number, number, number, number] = [0, 0, 0, 0];
      let completion = submit;
      for (const row of rows) {
        const [targetStatus, targetProgress, start, end] = targetRow(random, status, submit);
        progress[BUCKETS[targetStatus] ?? 3]++;
        if (end !== null && end > completion) completion = end;
        const pending = targetStatus === 'queued' || targetStatus === 'in_progress';
        insertTarget.run(
          id,
          row.id,
          row.pk,
          targetStatus,
          targetProgress,
          targetStatus === 'failed' ? 'device reported an error' : null,
          submit,
          start,
          end,
          pending ? (start ?? submit) + 600_000 : null,
        );
      }
      const finished = status !== 'new' && status !== 'in_progress';
      insertJob.run(
        id,
        ACCOUNT_ID,
        `user${Math.floor(random() * USER_COUNT)}`,
        pick(random, JOB_TYPES),
        status,
        chance(random, 0.3) ? `rollout ${id % 1000}` : null,
        submit,
        finished ? completion : null,
        targetCount,
        progress[0],
        progress[1],
        progress[2],
        progress[3],
        '{"message":"hello"}',
        600,
        86_400,
        '{"devices":[]}',
      );
    }
  });
  for (let from = 0; from < JOB_COUNT; from += BATCH) insertBatch(from, Math.min(JOB_COUNT, from + BATCH));
}

/** Builds the dataset into `path` (replacing it). */
export async function generateDataset(path: string): Promise<void> {
  const building = `${path}.building`;
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${building}${suffix}`, { force: true });
  mkdirSync(dirname(path), { recursive: true });
  await (await openSqliteDatabase(building)).destroy();
  const db = new BetterSqlite3(building);
  try {
    db.pragma('journal_mode = OFF');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -1000000');
    db.pragma('foreign_keys = OFF');
    const random = seededRandom(SEED);
    db.prepare('INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)').run(
      ACCOUNT_ID,
      'bench',
      DATASET_NOW,
    );
    insertDevices(db, random);
    insertJobs(db, random);
    // The planner statistics a store in service keeps up to date (PRAGMA optimize).
    db.exec('ANALYZE');
    db.pragma('journal_mode = WAL');
  } finally {
    db.close();
  }
  renameSync(building, path);
}

/** The path of the cached dataset, generated first if it is missing. */
export async function ensureDataset(log: (line: string) => void = console.log): Promise<string> {
  const path = datasetPath();
  if (!existsSync(path)) {
    log(`generating ${path} (about a minute)…`);
    const started = performance.now();
    await generateDataset(path);
    log(`generated in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return path;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await ensureDataset();
}
