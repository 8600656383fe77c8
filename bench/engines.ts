/**
 * The same store calls on SQLite and on PostgreSQL, same data, same machine: a page of 1,000 jobs,
 * a streamed export of targets (rows/s), device statuses applied (statuses/s), a timeout sweep.
 * PostgreSQL is `--database-url URL` (an empty database) or, without it, a throw-away embedded one.
 *
 *   npx tsx bench/engines.ts [--store sqlite|postgres|both] [--database-url URL]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { startEmbeddedPostgres } from '../test/setup/embedded-postgres.js';

const DEVICES = 50_000;
const SMALL_JOBS = 2_000;
const PAGE = 1_000;
const PAGE_RUNS = 20;
const STATUSES = 5_000;
const STATUS_BATCH = 100;

const { values } = parseArgs({
  options: { store: { type: 'string', default: 'both' }, 'database-url': { type: 'string' } },
});

const deviceId = (n: number) => `00000000-00000000-00000000-${n.toString(16).toUpperCase().padStart(8, '0')}`;

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0;

async function measure(engine: string, store: Store): Promise<Record<string, string>> {
  let now = Date.UTC(2026, 11, 1);
  const account = (await store.ensureAccount('bench', now)).id;
  for (let start = 0; start < DEVICES; start += 10_000) {
    await store.createDevices(
      account,
      Array.from({ length: 10_000 }, (_, i) => ({ id: deviceId(start + i), token_hash: 'hash' })),
    );
  }
  const job = (devices: string[] | null) => ({
    accountId: account,
    username: 'bench',
    job_type: 'reboot' as const,
    description: null,
    targets: devices === null ? { all: true } : { devices },
    selection: { devices: devices ?? [], groups: [], tags: [], query: null, all: devices === null },
    payload: null,
    timeout: 600,
    offline_timeout: 3_600,
    now: ++now,
  });
  const createTimes: number[] = [];
  for (let i = 0; i < SMALL_JOBS; i++) {
    const start = performance.now();
    await store.createJob(job([deviceId(i % DEVICES)]));
    createTimes.push(performance.now() - start);
  }
  let started = performance.now();
  const big = await store.createJob(job(null));
  const createBig = performance.now() - started;

  const pageTimes: number[] = [];
  for (let i = 0; i < PAGE_RUNS; i++) {
    const start = performance.now();
    const page = await store.listJobs({
      accountId: account,
      query: null,
      order: { field: 'id', direction: 'desc' },
      after: null,
      limit: PAGE,
    });
    pageTimes.push(performance.now() - start);
    if (page.length !== PAGE) throw new Error(`a page of ${page.length} jobs`);
  }

  started = performance.now();
  let exported = 0;
  for await (const batch of store.streamTargets(big.id, {
    accountId: account,
    query: null,
    order: { field: 'device_id', direction: 'asc' },
  })) {
    exported += batch.length;
  }
  const exportSeconds = (performance.now() - started) / 1000;

  await store.startNewJobs({ node: 'bench', now: Date.now(), expires: Date.now() });
  started = performance.now();
  for (let start = 0; start < STATUSES; start += STATUS_BATCH) {
    await store.applyStatuses(
      Array.from({ length: STATUS_BATCH }, (_, i) => ({
        device_id: deviceId(start + i),
        job_id: big.id,
        report: { status: 'successful' as const },
      })),
      ++now,
    );
  }
  const statusSeconds = (performance.now() - started) / 1000;

  started = performance.now();
  let expired = 0;
  for (;;) {
    const count = await store.expireTargets(now + 7_200_000, 1_000);
    expired += count;
    if (count === 0) break;
  }
  const expireSeconds = (performance.now() - started) / 1000;
  const after = await store.getJob(account, big.id);
  if (after?.progress_success !== STATUSES || after.progress_failures !== DEVICES - STATUSES) {
    throw new Error(`${engine}: wrong counts ${JSON.stringify(after)}`);
  }

  return {
    engine,
    'create 1-target job p50': `${median(createTimes).toFixed(1)} ms`,
    [`create ${DEVICES}-target job`]: `${createBig.toFixed(0)} ms`,
    [`page of ${PAGE} jobs p50`]: `${median(pageTimes).toFixed(1)} ms`,
    'export targets': `${Math.round(exported / exportSeconds)} rows/s`,
    'apply statuses': `${Math.round(STATUSES / statusSeconds)} statuses/s`,
    [`expire ${expired} targets`]: `${(expireSeconds * 1000).toFixed(0)} ms`,
  };
}

const results: Record<string, string>[] = [];
if (values.store === 'both' || values.store === 'sqlite') {
  const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-bench-'));
  const store = await openSqliteStore(join(folder, 'fleetjobs.db'));
  try {
    results.push(await measure('sqlite', store));
  } finally {
    await store.close();
    rmSync(folder, { recursive: true, force: true });
  }
}
if (values.store === 'both' || values.store === 'postgres') {
  const embedded = values['database-url'] ? undefined : await startEmbeddedPostgres();
  const store = await openPostgresStore(values['database-url'] ?? (embedded?.url as string));
  try {
    results.push(await measure('postgres', store));
  } finally {
    await store.close();
    await embedded?.stop();
  }
}
console.table(results);
