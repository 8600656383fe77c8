/**
 * The cost of a /metrics scrape on the generated dataset (100,000 devices, 1,000,000 jobs,
 * 3,000,000 targets), through the app as Prometheus calls it, store gauges included. Goal: p50 of
 * a scrape ≤ 5 ms.
 * The dataset is copied first, so the store's migrations and writes never touch the cached one.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/api/app.js';
import { JobService } from '../src/jobs/service.js';
import { Metrics } from '../src/observability/metrics.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { ensureDataset } from './generate.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 50);
const GOAL_MS = 5;

const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-bench-metrics-'));
const path = join(dir, 'fleet.db');
copyFileSync(await ensureDataset(), path);
let store: Store | undefined;
const metrics = new Metrics(() => (store as Store).totals());
store = await openSqliteStore(path, { onQuery: metrics.storeQuery });
const app = await buildApp({ store, jobs: new JobService(store), metrics });

const scrape = async (): Promise<number> => {
  const started = performance.now();
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  if (response.statusCode !== 200) throw new Error(`scrape: ${response.statusCode}`);
  return performance.now() - started;
};
const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

await scrape(); // warm: the first read of the tables
const times: number[] = [];
for (let run = 0; run < RUNS; run++) times.push(await scrape());
const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
console.log(
  text
    .split('\n')
    .filter((line) => /^fleetjobs_(jobs|targets|devices)/.test(line))
    .join('\n'),
);
console.log(
  `scrape: p50 ${median(times).toFixed(2)} ms, max ${Math.max(...times).toFixed(2)} ms (${RUNS} scrapes)`,
);
await app.close();
metrics.close();
await store.close();
rmSync(dir, { recursive: true, force: true });
const ok = median(times) <= GOAL_MS;
console.log(ok ? `goal met (≤ ${GOAL_MS} ms)` : `goal MISSED: a scrape takes more than ${GOAL_MS} ms`);
if (!ok) process.exitCode = 1;
