/**
 * `GET /ws/v1/jobs/bulk` of the generated dataset's 1,000,000 jobs, over HTTP from a listening
 * service, read by curl in another process: rows per second, the service's CPU time (a
 * steadier figure than rows/s on a busy machine) and its peak JS heap (RSS says
 * little here: the store maps the 750 MB file into memory), next
 * to `sqlite3 -csv` reading the same columns from the same file (when the sqlite3 shell is
 * installed). Goal: at least 400,000 rows/s, with the heap flat (under 200 MiB) however long the export.
 * `--store postgres` exports from the dataset in PostgreSQL (bench/postgres-data.ts), next to
 * `psql -c "\copy (SELECT same columns FROM jobs) TO STDOUT CSV"`; there the goal is half of psql's
 * rows/s, as it is half of sqlite3's on SQLite (issue 7).
 *
 *   npx tsx bench/csv-export.ts [--store sqlite|postgres] [--database-url URL]
 */
import { spawn, spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildApp } from '../src/api/app.js';
import { JobService } from '../src/jobs/service.js';
import { JOB_FIELDS } from '../src/model/job.js';
import { hashApiSecret, randomId, randomSecret } from '../src/security/hashing.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { ACCOUNT_ID, DATASET_NOW, ensureDataset, JOB_COUNT } from './generate.js';
import { ensurePostgresDataset } from './postgres-data.js';

const GOAL_ROWS_PER_S = 400_000;
const GOAL_HEAP_MIB = 200;
/** The export's rows/s at least this share of the engine's own shell's (sqlite3 -csv, psql \copy). */
const GOAL_SHARE_OF_SHELL = 0.5;
const BENCH_USER = 'bench-export';

/** Reads `url` to its end in another process (curl), as a client would; resolves with its line count. */
function download(url: string, headers: Record<string, string>): Promise<number> {
  const headerArgs = Object.entries(headers).map(([name, value]) => `-H '${name}: ${value}'`);
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `curl -sf ${headerArgs.join(' ')} '${url}' | wc -l`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', () => resolve(Number(output.trim())));
  });
}

async function exportRowsPerSecond(
  store: Store,
): Promise<{ rowsPerS: number; cpuS: number; peakHeapMib: number }> {
  try {
    const user =
      (await store.findUser(BENCH_USER)) ??
      (await store.createUser({
        accountId: ACCOUNT_ID,
        username: BENCH_USER,
        passwordHash: 'none',
        role: 'read_only',
        now: DATASET_NOW,
      }));
    const secret = randomSecret();
    const key = await store.createApiKey({
      id: randomId(),
      userId: user.id,
      secretHash: hashApiSecret(secret),
      now: DATASET_NOW,
    });
    const app = await buildApp({ store, jobs: new JobService(store) });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const heap = () => {
      const { heapUsed, external } = process.memoryUsage();
      return heapUsed + external;
    };
    let peakHeap = heap();
    const sampler = setInterval(() => {
      peakHeap = Math.max(peakHeap, heap());
    }, 100);
    try {
      const { port } = app.server.address() as AddressInfo;
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const lines = await download(`http://127.0.0.1:${port}/ws/v1/jobs/bulk`, {
        'x-api-key-id': key.id,
        'x-api-key-secret': secret,
      });
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      if (lines !== JOB_COUNT + 1) throw new Error(`expected ${JOB_COUNT + 1} lines, got ${lines}`);
      return {
        rowsPerS: JOB_COUNT / seconds,
        cpuS: (cpu.user + cpu.system) / 1e6,
        peakHeapMib: peakHeap / 1024 / 1024,
      };
    } finally {
      clearInterval(sampler);
      await store.revokeApiKey(key.id);
      await app.close();
    }
  } finally {
    await store.close();
  }
}

/** Rows/s of the engine's own shell writing the same columns of every job as CSV (undefined: not installed). */
function shellRowsPerSecond(command: string, argument: string): number | undefined {
  const started = performance.now();
  const shell = spawnSync('sh', ['-c', `${command} > /dev/null`, argument], { stdio: 'inherit' });
  if (shell.status !== 0) return undefined;
  return JOB_COUNT / ((performance.now() - started) / 1000);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { store: { type: 'string', default: 'sqlite' }, 'database-url': { type: 'string' } },
  });
  const select = `SELECT ${JOB_FIELDS.join(', ')} FROM jobs`;
  let shellName: string;
  let shell: number | undefined;
  let rowsPerS: number;
  let cpuS: number;
  let peakHeapMib: number;
  if (values.store === 'postgres') {
    const dataset = await ensurePostgresDataset(values['database-url']);
    try {
      shellName = 'psql \\copy … TO STDOUT CSV';
      shell = shellRowsPerSecond(`psql "$0" -q -c "\\copy (${select}) TO STDOUT CSV"`, dataset.url);
      ({ rowsPerS, cpuS, peakHeapMib } = await exportRowsPerSecond(await openPostgresStore(dataset.url)));
    } finally {
      await dataset.stop();
    }
  } else {
    const path = await ensureDataset();
    shellName = 'sqlite3 -csv';
    shell = shellRowsPerSecond(`sqlite3 -csv -readonly "$0" "${select}"`, path);
    ({ rowsPerS, cpuS, peakHeapMib } = await exportRowsPerSecond(await openSqliteStore(path)));
  }
  const thousands = (rows: number) => `${Math.round(rows / 1000)}k rows/s`;
  console.log(`${shellName}: ${shell === undefined ? 'not installed' : thousands(shell)}`);
  console.log(
    `GET /ws/v1/jobs/bulk: ${thousands(rowsPerS)}${shell === undefined ? '' : ` (${(rowsPerS / shell).toFixed(2)} × the shell's)`} ` +
      `(service CPU ${cpuS.toFixed(1)} s), peak heap ${peakHeapMib.toFixed(0)} MiB`,
  );
  const goalRows = Math.max(GOAL_ROWS_PER_S, GOAL_SHARE_OF_SHELL * (shell ?? 0));
  const missed = rowsPerS < goalRows || peakHeapMib > GOAL_HEAP_MIB;
  console.log(`goal ≥ ${thousands(goalRows)} and heap ≤ ${GOAL_HEAP_MIB} MiB: ${missed ? 'MISSED' : 'met'}`);
  if (missed) process.exitCode = 1;
}
