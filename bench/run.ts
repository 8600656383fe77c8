/**
 * `npm run bench`: every benchmark, one after the other, each in its own process (so one's heap and
 * caches do not slow the next). Exits non-zero when any of them misses its goal or fails.
 * `npm run bench -- query-pages` runs only the benchmarks whose file name contains an argument.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCHMARKS = [
  'query-parse.ts', // parse + compile speed of the query language
  'query-pages.ts', // pages of 1,000 jobs for the issue 3 queries on the generated dataset
  'create-job.ts', // creating, cancelling and deleting jobs of 100,000 targets; 100,000 devices
  'dispatch.ts', // a job to 10,000 simulated devices: time to complete, service RSS, with flapping devices
  'dispatch-large.ts', // a 100,000-target job dispatched without stalling the event loop
  'monitor-fanout.ts', // a job to 10,000 simulated devices with a monitor receiving every event vs without
  'engines.ts', // the same store calls on SQLite and on an embedded PostgreSQL
  'metrics.ts', // a /metrics scrape on the generated dataset
  'csv-export.ts', // GET /ws/v1/jobs/bulk of 1,000,000 jobs: rows/s next to sqlite3 -csv, heap flat
  'deadline-backlog.ts', // a service started after downtime times out the dataset's overdue targets while a client pages
  'console-jobs-page.ts', // the console's first jobs page in chromium vs the API call behind it
];

const here = dirname(fileURLToPath(import.meta.url));
const only = process.argv.slice(2);
const failed: string[] = [];
for (const file of BENCHMARKS.filter(
  (name) => only.length === 0 || only.some((part) => name.includes(part)),
)) {
  console.log(`\n=== bench/${file}`);
  const { status } = spawnSync(process.execPath, ['--import', 'tsx', join(here, file)], { stdio: 'inherit' });
  if (status !== 0) failed.push(file);
}
if (failed.length > 0) {
  console.log(`\nmissed a goal or failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
