/**
 * A service started on the generated dataset after downtime (issue 7): every pending target's
 * deadline has passed, so the dispatcher's timeout loop (expireTargets, nextDeadline) times them
 * all out while a client pages through the jobs. Runs the real dispatch (embedded broker, no
 * device connected) and API in this process, on a copy of the dataset, on SQLite or PostgreSQL.
 *
 * Prints: how long the backlog took; the plain page of 1,000 jobs (`GET /ws/v1/jobs?size=1000`,
 * timed by curl in another process, back to back) meanwhile, next to reading and JSON-encoding
 * the same rows outside the service (the engine's own driver, no store, no HTTP); the longest store
 * statements (kysely's log: on SQLite a statement holds the event loop for all of it, on
 * PostgreSQL it waits on a socket) and the event loop's worst delay (perf_hooks). Goals: the page's
 * p50 within 3 × the outside read, no statement over 50 ms on SQLite, no event-loop delay over 50 ms.
 *
 *   npx tsx bench/deadline-backlog.ts [--store sqlite|postgres] [--database-url URL]
 */
import { spawn } from 'node:child_process';
import { constants, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { pino } from 'pino';
import { buildApp } from '../src/api/app.js';
import { startDispatch } from '../src/dispatch/index.js';
import { JobService } from '../src/jobs/service.js';
import { JOB_LIST_FIELDS } from '../src/model/job.js';
import { hashApiSecret, randomId, randomSecret } from '../src/security/hashing.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { ACCOUNT_ID, DATASET_NOW, ensureDataset } from './generate.js';
import { ensurePostgresDataset } from './postgres-data.js';

const PAGE = 1_000;
const GOAL_PAGE_TIMES = 3;
const GOAL_MS = 50;
const OUTSIDE_RUNS = 21;
const COPY_DATABASE = 'fleet_deadline_backlog';

const { values } = parseArgs({
  options: { store: { type: 'string', default: 'sqlite' }, 'database-url': { type: 'string' } },
});
const engine = values.store === 'postgres' ? 'postgres' : 'sqlite';

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)] ?? 0;
const percentile = (samples: number[], p: number) =>
  [...samples].sort((a, b) => a - b)[Math.min(samples.length - 1, Math.floor((samples.length - 1) * p))] ?? 0;

/** The page's SQL as the store writes it for `GET /ws/v1/jobs?size=1000` (one row more: the cursor). */
const PAGE_SQL = `SELECT ${JOB_LIST_FIELDS.join(', ')} FROM jobs WHERE customer_id = ${ACCOUNT_ID}
  ORDER BY id DESC LIMIT ${PAGE + 1}`;

/** ms to read the page's rows with the engine's own driver and JSON-encode them, median of OUTSIDE_RUNS. */
async function outsideRead(read: () => Promise<unknown[]> | unknown[]): Promise<number> {
  const times: number[] = [];
  await read(); // warms the cache, as the quiet service's first pages do
  for (let run = 0; run < OUTSIDE_RUNS; run++) {
    const started = performance.now();
    JSON.stringify(await read());
    times.push(performance.now() - started);
  }
  return median(times);
}

/** The copy the service runs on (it times targets out), and the outside read of the page. */
async function prepare(): Promise<{
  open(onQuery: (ms: number, sql: string) => void): Promise<Store>;
  pending(): Promise<number>;
  outsideMs: number;
  dispose(): Promise<void>;
}> {
  if (engine === 'postgres') {
    const dataset = await ensurePostgresDataset(values['database-url']);
    const url = await dataset.copyDatabase(COPY_DATABASE);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const outsideMs = await outsideRead(async () => (await client.query(PAGE_SQL)).rows);
    return {
      open: (onQuery) => openPostgresStore(url, onQuery),
      pending: async () =>
        Number(
          (
            await client.query(
              `SELECT count(*) AS n FROM job_targets WHERE status IN ('queued', 'in_progress') AND deadline <= $1`,
              [Date.now()],
            )
          ).rows[0].n,
        ),
      outsideMs,
      async dispose() {
        await client.end();
        await dataset.dropDatabase(COPY_DATABASE);
        await dataset.stop();
      },
    };
  }
  const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-deadline-backlog-'));
  const path = join(folder, 'fleet.db');
  copyFileSync(await ensureDataset(), path, constants.COPYFILE_FICLONE);
  const reader = new BetterSqlite3(path, { readonly: true });
  const outsideMs = await outsideRead(() => reader.prepare(PAGE_SQL).all());
  return {
    open: (onQuery) => openSqliteStore(path, { onQuery }),
    pending: async () =>
      (
        reader
          .prepare(
            `SELECT count(*) AS n FROM job_targets WHERE status IN ('queued', 'in_progress') AND deadline <= ?`,
          )
          .get(Date.now()) as { n: number }
      ).n,
    outsideMs,
    async dispose() {
      reader.close();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** curl asking for `url` back to back until stopped: each answer's total time in ms. */
function pageLoop(url: string, headers: Record<string, string>) {
  const headerArgs = Object.entries(headers)
    .map(([name, value]) => `-H '${name}: ${value}'`)
    .join(' ');
  const child = spawn(
    'sh',
    [
      '-c',
      `while true; do curl -sf -o /dev/null -w '%{time_total}\\n' ${headerArgs} '${url}' || exit 1; done`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const times: { at: number; ms: number }[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    times.push({ at: performance.now(), ms: Number(line) * 1000 });
  });
  return {
    times,
    stop: () => {
      child.kill();
    },
  };
}

const prepared = await prepare();
const pendingBefore = await prepared.pending();
const statements: { ms: number; sql: string }[] = [];
const store = await prepared.open((ms, sql) => {
  if (ms > 10) statements.push({ ms, sql });
});
const loop = monitorEventLoopDelay({ resolution: 10 });
try {
  const user = await store.createUser({
    accountId: ACCOUNT_ID,
    username: `bench-backlog-${randomId()}`,
    passwordHash: 'none',
    role: 'read_only',
    now: DATASET_NOW,
  });
  const secret = randomSecret();
  const key = await store.createApiKey({
    id: randomId(),
    userId: user.id,
    secretHash: hashApiSecret(secret),
    now: DATASET_NOW,
  });
  const jobs = new JobService(store);
  const app = await buildApp({ store, jobs });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const pages = pageLoop(`http://127.0.0.1:${port}/ws/v1/jobs?size=${PAGE}`, {
    'x-api-key-id': key.id,
    'x-api-key-secret': secret,
  });
  // The quiet service first: pages before the dispatcher starts.
  while (pages.times.length < 10) await new Promise((resolve) => setTimeout(resolve, 50));
  const quiet = pages.times.splice(0).map((time) => time.ms);
  statements.length = 0;
  loop.enable();
  const started = performance.now();
  const dispatch = await startDispatch({
    store,
    jobs,
    mqttHost: '127.0.0.1',
    mqttPort: 0,
    logger: pino({ level: 'silent' }),
  });
  let left = pendingBefore;
  while (left > 0 && performance.now() - started < 600_000) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    left = await prepared.pending();
  }
  const seconds = (performance.now() - started) / 1000;
  loop.disable();
  const during = pages.times.filter((time) => time.at <= started + seconds * 1000).map((time) => time.ms);
  pages.stop();
  await dispatch.close();
  await app.close();

  const slowest = [...statements].sort((a, b) => b.ms - a.ms);
  const over = slowest.filter((statement) => statement.ms > GOAL_MS);
  const loopMaxMs = loop.max / 1e6;
  const pageP50 = median(during);
  console.log(
    `${engine}: ${pendingBefore - left} of ${pendingBefore} overdue targets timed out in ${seconds.toFixed(1)} s`,
  );
  console.log(
    `outside the service (driver + JSON.stringify of the ${PAGE + 1} rows): ${prepared.outsideMs.toFixed(1)} ms`,
  );
  console.log(`page of ${PAGE} jobs, quiet service: p50 ${median(quiet).toFixed(1)} ms`);
  console.log(
    `page of ${PAGE} jobs during the backlog (${during.length} pages): p50 ${pageP50.toFixed(1)} ms ` +
      `(${(pageP50 / prepared.outsideMs).toFixed(1)} × outside), p90 ${percentile(during, 0.9).toFixed(1)} ms, ` +
      `max ${Math.max(0, ...during).toFixed(1)} ms`,
  );
  console.log(
    `store statements over ${GOAL_MS} ms: ${over.length}; longest ${(slowest[0]?.ms ?? 0).toFixed(1)} ms` +
      (slowest[0] === undefined ? '' : `: ${slowest[0].sql.replace(/\s+/g, ' ').slice(0, 140)}`),
  );
  for (const statement of over.slice(1, 4)) {
    console.log(`  ${statement.ms.toFixed(1)} ms: ${statement.sql.replace(/\s+/g, ' ').slice(0, 140)}`);
  }
  console.log(
    `event-loop delay: max ${loopMaxMs.toFixed(0)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(0)} ms`,
  );
  const missed = [
    pageP50 > GOAL_PAGE_TIMES * prepared.outsideMs && `page p50 over ${GOAL_PAGE_TIMES} × outside`,
    engine === 'sqlite' && over.length > 0 && `statements over ${GOAL_MS} ms`,
    loopMaxMs > GOAL_MS && `event-loop delay over ${GOAL_MS} ms`,
    left > 0 && `${left} overdue targets left`,
  ].filter(Boolean);
  console.log(missed.length === 0 ? 'goals met' : `MISSED: ${missed.join(', ')}`);
  if (missed.length > 0) process.exitCode = 1;
} finally {
  await store.close();
  await prepared.dispose();
}
