/**
 * How long the SQLite store takes to create (and cancel, and delete) a job of 100,000 targets, by
 * each kind of selector, and how long the event loop is held meanwhile.
 *
 *   npx tsx bench/create-job.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobService } from '../src/jobs/service.js';
import type { TargetSelector } from '../src/model/job.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const DEVICES = 100_000;
const BATCH = 10_000;

const deviceId = (n: number) => `00000000-00000000-00000000-${n.toString(16).toUpperCase().padStart(8, '0')}`;

/** Runs `run`, printing how long it took and the longest time the event loop could not run a timer. */
async function timed<T>(label: string, run: () => Promise<T>): Promise<T> {
  let longestGap = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    longestGap = Math.max(longestGap, now - last);
    last = now;
  }, 1);
  const start = performance.now();
  const result = await run();
  const elapsed = performance.now() - start;
  await new Promise((resolve) => setTimeout(resolve, 5));
  clearInterval(ticker);
  console.log(
    `${label.padEnd(44)} ${elapsed.toFixed(0).padStart(6)} ms   (longest event-loop stall ${longestGap.toFixed(0)} ms)`,
  );
  return result;
}

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-bench-'));
try {
  const store = await openSqliteStore(join(folder, 'fleetjobs.db'));
  const service = new JobService(store);
  const account = (await store.ensureAccount('bench', Date.now())).id;

  await timed(`create ${DEVICES} devices (${BATCH} per request)`, async () => {
    for (let start = 0; start < DEVICES; start += BATCH) {
      await service.createDevices(
        account,
        Array.from({ length: BATCH }, (_, i) => ({
          id: deviceId(start + i),
          group: `/fleet/site${(start + i) % 50}`,
          tags: (start + i) % 2 === 0 ? ['even'] : [],
        })),
      );
    }
  });

  const allIds = Array.from({ length: DEVICES }, (_, n) => deviceId(n));
  const selectors: [string, TargetSelector][] = [
    ['all', { all: true }],
    ['group /fleet (with subgroups)', { groups: ['/fleet'] }],
    ['100,000 device ids', { devices: allIds }],
    ['query', { query: "group startsWith '/fleet/'" }],
    ['tags (50,000) + group', { tags: ['even'], groups: ['/fleet'] }],
  ];
  for (const [label, targets] of selectors) {
    const job = await timed(`createJob: ${label}`, () =>
      service.createJob(account, 'bench', { job_type: 'reboot', targets }),
    );
    if (job.target_count !== DEVICES) throw new Error(`expected ${DEVICES} targets, got ${job.target_count}`);
    await timed('  cancelJobs', () => service.cancelJobs(account, [job.id], false));
    await timed('  deleteJobs', () => service.deleteJobs(account, [job.id]));
  }
  await store.close();
} finally {
  rmSync(folder, { recursive: true, force: true });
}
