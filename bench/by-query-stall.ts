/**
 * Cancel and delete by query of tens of thousands of jobs on a copy of the generated dataset, in
 * process, while a 5 ms timer runs: the worst event-loop delay is how long every other request
 * (and MQTT) would have waited. Goal (§13): no delay above 100 ms.
 */
import { copyFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseQuery, type Query } from '../src/query/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { ACCOUNT_ID, DATASET_NOW, datasetPath, ensureDataset } from './generate.js';

const GOAL_MS = 100;

const jobQuery = (text: string): Query => {
  const query = parseQuery(text, 'jobs');
  if (query === null) throw new Error('empty query');
  return query;
};

/**
 * Runs `operation` and returns its result, its duration and the worst event-loop delay meanwhile:
 * the longest gap between the ticks of a 5 ms timer, less those 5 ms.
 */
export async function measured<T>(
  operation: () => Promise<T>,
): Promise<{ result: T; ms: number; worstDelayMs: number }> {
  const TICK_MS = 5;
  let lastTick = performance.now();
  let worstGap = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    worstGap = Math.max(worstGap, now - lastTick);
    lastTick = now;
  }, TICK_MS);
  await new Promise((resolve) => setTimeout(resolve, 3 * TICK_MS));
  const started = performance.now();
  const result = await operation();
  const ms = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 3 * TICK_MS));
  clearInterval(timer);
  return { result, ms, worstDelayMs: Math.max(0, worstGap - TICK_MS) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await ensureDataset();
  const copy = `${datasetPath()}.stall-copy`;
  copyFileSync(datasetPath(), copy);
  let store: Store | undefined;
  let missed = false;
  try {
    store = await openSqliteStore(copy);
    const open = store;
    const runs = [
      {
        label: 'cancel by query',
        run: () =>
          open.cancelJobsByQuery(
            ACCOUNT_ID,
            jobQuery("job_status = 'in_progress' or job_status = 'new'"),
            false,
            DATASET_NOW,
          ),
      },
      {
        label: 'delete by query',
        run: () =>
          open.deleteJobsByQuery(
            ACCOUNT_ID,
            jobQuery("username = 'user1' or username = 'user2' or username = 'user3'"),
          ),
      },
    ];
    for (const { label, run } of runs) {
      const { result, ms, worstDelayMs } = await measured(run);
      const over = worstDelayMs > GOAL_MS;
      missed ||= over;
      console.log(
        `${label}: count ${result.count}, skipped ${result.skipped} in ${(ms / 1000).toFixed(1)} s; ` +
          `worst event-loop delay ${worstDelayMs.toFixed(0)} ms (goal ≤ ${GOAL_MS} ms: ${over ? 'MISSED' : 'met'})`,
      );
    }
  } finally {
    await store?.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${copy}${suffix}`, { force: true });
  }
  if (missed) process.exitCode = 1;
}
