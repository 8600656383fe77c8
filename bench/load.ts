/**
 * The read-heavy mix of issue 9 against `fleetjobs serve` on a copy of the generated dataset
 * (1,000,000 jobs), from 200 concurrent clients: 70 % query pages, 10 % single jobs, 10 % creates,
 * 5 % cancels (of jobs this run created), 5 % CSV exports of 1,000 jobs (an id range). The server runs in its own
 * process (as in service), autocannon in this one. Prints requests per second, p50/p99 latency and
 * every error or non-2xx answer. Goal: ≥ 1.8 × 160 req/s with p99 under 1 s and no error.
 *
 * The server's event-loop delay during the run (max and p99, from prom-client's
 * `nodejs_eventloop_lag_*` series, which restart at each scrape) is printed too.
 *
 * The dataset's pending targets (those of its ~30,000 unfinished jobs) had their deadlines when
 * it was generated, long past now: the copy gets them moved to a day from now, as in a store in
 * service, so that the run measures the mix, not the one-off expiry of ~60,000 stale targets
 * (which took the server minutes, competing with every request).
 *
 * The pool of read workers reads identical pages waiting together once (src/store/sqlite/read-pool.ts):
 * with `--distinct` each page's query holds a condition of its own (`id < 1000000000 + n`, true of every job),
 * so that none is shared and the run measures reading every page.
 *
 * `--store postgres`: the service on PostgreSQL, on a copy of the dataset loaded by
 * bench/postgres-data.ts (an embedded server, or `--database-url URL`).
 *
 *   npx tsx bench/load.ts [--seconds 30] [--connections 200] [--distinct] [--store sqlite|postgres]
 *   (SERVICE_NODE_ARGS="--cpu-prof --cpu-prof-dir /tmp/x" passes node options to the server process)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants, copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import Database from 'better-sqlite3';
import pg from 'pg';
import { hashApiSecret, randomId, randomSecret } from '../src/security/hashing.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { ACCOUNT_ID, DEVICE_COUNT, datasetPath, ensureDataset, JOB_COUNT } from './generate.js';
import { ensurePostgresDataset } from './postgres-data.js';

const GOAL_RPS = 1.8 * 160;
const GOAL_P99_MS = 1_000;

const argument = (name: string, fallback: number): number => {
  const index = process.argv.indexOf(`--${name}`);
  return index < 0 ? fallback : Number(process.argv[index + 1]);
};

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
const randomInt = (below: number): number => Math.floor(Math.random() * below);
const hex8 = (n: number): string => n.toString(16).toUpperCase().padStart(8, '0');
/** A device of the dataset (its ids as bench/generate.ts writes them, pk 1…DEVICE_COUNT). */
const randomDeviceId = (): string => `00000000-00000000-0004F3FF-${hex8(1 + randomInt(DEVICE_COUNT))}`;

/** Queries a user would page through; each page asks for 1,000 jobs. */
const PAGE_QUERIES = [
  '',
  "job_status = 'in_progress'",
  "username = 'user7'",
  "job_status = 'complete' and username = 'user12'",
  "device.group startsWith '/NorthWest'",
  "job_type = 'update_firmware'",
];
const ORDERS = ['id desc', 'id asc', 'job_submit_time desc'];

type Kind = 'page' | 'job' | 'create' | 'cancel' | 'csv';
const MIX: ReadonlyArray<[Kind, number]> = [
  ['page', 0.7],
  ['job', 0.1],
  ['create', 0.1],
  ['cancel', 0.05],
  ['csv', 0.05],
];
const chooseKind = (): Kind => {
  let roll = Math.random();
  for (const [kind, share] of MIX) {
    roll -= share;
    if (roll < 0) return kind;
  }
  return 'page';
};

const startServer = async (
  storeArgs: string[],
  port: number,
  mqttPort: number,
  nodeArgs: string[],
): Promise<ChildProcess> => {
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      '--import',
      'tsx',
      'src/cli/main.ts',
      'serve',
      ...storeArgs,
      '--port',
      String(port),
      '--mqtt-port',
      String(mqttPort),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, FLEETJOBS_LOG_LEVEL: 'warn' } },
  );
  for (let tries = 0; tries < 600; tries++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error('the server did not start within 60 s');
};

/**
 * CPU seconds a process (all its threads) has used, from /proc (Linux): what the run cost the
 * server whatever else the machine was doing.
 */
function cpuSeconds(pid: number | undefined, thread?: number): number {
  try {
    const path = thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`;
    const fields = readFileSync(path, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime, fields 14 and 15 of stat (11 and 12 after the command name), in clock ticks.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

/** The requests the server has answered (every route and status), from its /metrics. */
function answered(metrics: string): number {
  return metrics
    .split('\n')
    .filter((line) => line.startsWith('fleetjobs_http_requests_total{'))
    .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
}

/** prom-client's event-loop delay series (since the previous scrape), in milliseconds. */
function eventLoopLag(metrics: string): { max: number; p99: number } {
  const series = (name: string): number => {
    const line = metrics.split('\n').find((candidate) => candidate.startsWith(`${name} `));
    return line === undefined ? Number.NaN : Number(line.split(' ')[1]) * 1000;
  };
  return { max: series('nodejs_eventloop_lag_max_seconds'), p99: series('nodejs_eventloop_lag_p99_seconds') };
}

/** The pending targets' deadlines, a day from now (see above). */
const MOVE_DEADLINES =
  "UPDATE job_targets SET deadline = $1 WHERE status IN ('queued', 'in_progress') AND deadline IS NOT NULL";
const LOAD_DATABASE = 'fleet_load';

/**
 * A copy of the dataset the server runs on (it writes its store: never the dataset itself), its
 * deadlines moved: a SQLite file in a folder of its own, or a PostgreSQL database copied from the
 * loaded one (bench/postgres-data.ts).
 */
async function prepareStore(postgres: boolean): Promise<{
  storeArgs: string[];
  store: Store;
  dispose(): Promise<void>;
}> {
  const inADay = Date.now() + 86_400_000;
  if (postgres) {
    const index = process.argv.indexOf('--database-url');
    const dataset = await ensurePostgresDataset(index < 0 ? undefined : process.argv[index + 1]);
    const url = await dataset.copyDatabase(LOAD_DATABASE);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(MOVE_DEADLINES, [inADay]);
    await client.end();
    return {
      storeArgs: ['--database-url', url],
      store: await openPostgresStore(url),
      async dispose() {
        await dataset.dropDatabase(LOAD_DATABASE);
        await dataset.stop();
      },
    };
  }
  await ensureDataset();
  const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-load-'));
  const copy = join(folder, 'fleet.db');
  copyFileSync(datasetPath(), copy, constants.COPYFILE_FICLONE);
  const db = new Database(copy);
  db.prepare(MOVE_DEADLINES.replace('$1', '?')).run(inADay);
  db.close();
  return {
    storeArgs: ['--db', copy],
    store: await openSqliteStore(copy),
    dispose: async () => rmSync(folder, { recursive: true, force: true }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const seconds = argument('seconds', 30);
  const distinct = process.argv.includes('--distinct');
  let pagesAsked = 0;
  const connections = argument('connections', 200);
  const { storeArgs, store, dispose } = await prepareStore(
    process.argv.includes('--store') && process.argv[process.argv.indexOf('--store') + 1] === 'postgres',
  );
  // An operator with an API key in the dataset's account (API keys cost no scrypt per request).
  const user =
    (await store.findUser('load-bench')) ??
    (await store.createUser({
      accountId: ACCOUNT_ID,
      username: 'load-bench',
      passwordHash: 'x',
      role: 'user',
      now: Date.now(),
    }));
  const secret = randomSecret();
  const key = await store.createApiKey({
    id: randomId(),
    userId: user.id,
    secretHash: hashApiSecret(secret),
    now: Date.now(),
  });
  await store.close();

  const port = await freePort();
  const nodeArgs = (process.env.SERVICE_NODE_ARGS ?? '').split(/\s+/).filter((arg) => arg !== '');
  const server = await startServer(storeArgs, port, await freePort(), nodeArgs);
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  // Restarts the event-loop delay series, so that the next scrape covers the run alone.
  const answeredBefore = answered(await (await fetch(metricsUrl)).text());
  const cpuBefore = cpuSeconds(server.pid);
  const clientCpuBefore = cpuSeconds(process.pid);
  const clientLag = monitorEventLoopDelay({ resolution: 10 });
  clientLag.enable();
  // The main thread's id is the process id: the event loop, which every request passes through.
  const loopCpuBefore = cpuSeconds(server.pid, server.pid);
  const created: number[] = [];
  const counts = new Map<Kind, number>();
  /** Per kind, from when autocannon built each request to its answer, ms. */
  const latencies = new Map<Kind, number[]>();
  try {
    const result = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections,
      duration: seconds,
      headers: { 'x-api-key-id': key.id, 'x-api-key-secret': secret },
      requests: [
        {
          setupRequest: (request, context: { kind?: Kind; sent?: number }) => {
            let kind = chooseKind();
            if (kind === 'cancel' && created.length === 0) kind = 'job';
            context.kind = kind;
            context.sent = performance.now();
            counts.set(kind, (counts.get(kind) ?? 0) + 1);
            switch (kind) {
              case 'page': {
                const listed = pick(PAGE_QUERIES);
                // A condition no job fails, of its own: the page is not read once for several requests.
                const unique = `id < ${1_000_000_000 + ++pagesAsked}`;
                const query = !distinct ? listed : listed === '' ? unique : `${listed} and ${unique}`;
                const params = new URLSearchParams({ size: '1000', orderby: pick(ORDERS) });
                if (query !== '') params.set('query', query);
                return {
                  ...request,
                  method: 'GET',
                  path: `/ws/v1/jobs/inventory?${params}`,
                  body: undefined,
                };
              }
              case 'job':
                return {
                  ...request,
                  method: 'GET',
                  path: `/ws/v1/jobs/inventory/${1 + randomInt(JOB_COUNT)}`,
                };
              case 'create':
                return {
                  ...request,
                  method: 'POST',
                  path: '/ws/v1/jobs/inventory',
                  headers: { ...request.headers, 'content-type': 'application/json' },
                  body: JSON.stringify({
                    job_type: 'send_message',
                    description: 'load bench',
                    targets: { devices: [randomDeviceId()] },
                    payload: { hello: 'world' },
                  }),
                };
              case 'cancel': {
                const id = created.splice(randomInt(created.length), 1)[0];
                return { ...request, method: 'PUT', path: `/ws/v1/jobs/cancel/${id}`, body: undefined };
              }
              case 'csv': {
                const first = 1 + randomInt(JOB_COUNT - 1_000);
                const query = `id >= ${first} and id < ${first + 1_000}`;
                return {
                  ...request,
                  method: 'GET',
                  path: `/ws/v1/jobs/bulk?${new URLSearchParams({ query })}`,
                  body: undefined,
                };
              }
            }
          },
          onResponse: (status, body, context: { kind?: Kind; sent?: number }) => {
            if (context.kind !== undefined && context.sent !== undefined) {
              const kind = latencies.get(context.kind) ?? [];
              latencies.set(context.kind, kind);
              kind.push(performance.now() - context.sent);
            }
            if (context.kind === 'create' && status === 201)
              created.push((JSON.parse(body) as { id: number }).id);
          },
        },
      ],
    });
    const cpu = cpuSeconds(server.pid) - cpuBefore;
    const clientCpu = cpuSeconds(process.pid) - clientCpuBefore;
    const loopCpu = cpuSeconds(server.pid, server.pid) - loopCpuBefore;
    const rps = result.requests.average;
    const p99 = result.latency.p99;
    console.log(
      `${connections} clients, ${seconds} s: ${rps.toFixed(0)} req/s (goal ≥ ${GOAL_RPS}), ` +
        `p50 ${result.latency.p50} ms, p99 ${p99} ms (goal < ${GOAL_P99_MS}), ` +
        `errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}`,
    );
    console.log(`requests by kind: ${JSON.stringify(Object.fromEntries(counts))}`);
    const percentile = (sorted: number[], p: number) =>
      sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? Number.NaN;
    console.log(
      `latency by kind (p50 / p99 ms): ${[...latencies]
        .map(([kind, times]) => {
          const sorted = times.sort((a, b) => a - b);
          return `${kind} ${percentile(sorted, 0.5).toFixed(0)} / ${percentile(sorted, 0.99).toFixed(0)}`;
        })
        .join(', ')}`,
    );
    const metrics = await (await fetch(metricsUrl)).text();
    const lag = eventLoopLag(metrics);
    // Counted by the server: the requests autocannon gave up on were answered too.
    const served = answered(metrics) - answeredBefore;
    console.log(
      `server CPU during the run: ${cpu.toFixed(1)} s for ${served} requests answered, ${((1000 * cpu) / served).toFixed(1)} ms each ` +
        `(event-loop thread ${((1000 * loopCpu) / served).toFixed(1)} ms, other threads ${((1000 * (cpu - loopCpu)) / served).toFixed(1)} ms)`,
    );
    console.log(
      `server event-loop delay during the run: max ${lag.max.toFixed(0)} ms, p99 ${lag.p99.toFixed(0)} ms (goal < 100 ms)`,
    );
    // The client shares the machine: when it runs short of CPU its latencies include its own waits.
    clientLag.disable();
    console.log(
      `client (autocannon) during the run: CPU ${clientCpu.toFixed(1)} s of ${seconds} s, event-loop delay max ${(clientLag.max / 1e6).toFixed(0)} ms, p99 ${(clientLag.percentile(99) / 1e6).toFixed(0)} ms`,
    );
    const met = rps >= GOAL_RPS && p99 < GOAL_P99_MS && result.errors + result.timeouts + result.non2xx === 0;
    console.log(met ? 'goal met' : 'goal MISSED');
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    await dispose();
  }
}
