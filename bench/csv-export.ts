/**
 * `GET /ws/v1/jobs/bulk` of the generated dataset's 1,000,000 jobs, over HTTP from a listening
 * service, read by curl in another process: rows per second, the service's CPU time (a
 * steadier figure than rows/s on a busy machine) and its peak JS heap (RSS says
 * little here: the store maps the 750 MB file into memory), next
 * to `sqlite3 -csv` reading the same columns from the same file (when the sqlite3 shell is
 * installed). Goal: at least 400,000 rows/s, with the heap flat (under 200 MiB) however long the export.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../src/api/app.js';
import { JobService } from '../src/jobs/service.js';
import { JOB_FIELDS } from '../src/model/job.js';
import { hashApiSecret, randomId, randomSecret } from '../src/security/hashing.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { ACCOUNT_ID, DATASET_NOW, ensureDataset, JOB_COUNT } from './generate.js';

const GOAL_ROWS_PER_S = 400_000;
const GOAL_HEAP_MIB = 200;
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
  path: string,
): Promise<{ rowsPerS: number; cpuS: number; peakHeapMib: number }> {
  const store = await openSqliteStore(path);
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

function sqliteShellRowsPerSecond(path: string): number | undefined {
  const started = performance.now();
  const shell = spawnSync(
    'sh',
    ['-c', `sqlite3 -csv -readonly "$0" "SELECT ${JOB_FIELDS.join(', ')} FROM jobs" > /dev/null`, path],
    { stdio: 'inherit' },
  );
  if (shell.status !== 0) return undefined;
  return JOB_COUNT / ((performance.now() - started) / 1000);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const path = await ensureDataset();
  const shell = sqliteShellRowsPerSecond(path);
  const { rowsPerS, cpuS, peakHeapMib } = await exportRowsPerSecond(path);
  const thousands = (rows: number) => `${Math.round(rows / 1000)}k rows/s`;
  console.log(`sqlite3 -csv:          ${shell === undefined ? 'not installed' : thousands(shell)}`);
  console.log(
    `GET /ws/v1/jobs/bulk:  ${thousands(rowsPerS)} (service CPU ${cpuS.toFixed(1)} s), peak heap ${peakHeapMib.toFixed(0)} MiB`,
  );
  const missed = rowsPerS < GOAL_ROWS_PER_S || peakHeapMib > GOAL_HEAP_MIB;
  console.log(
    `goal ≥ ${thousands(GOAL_ROWS_PER_S)} and heap ≤ ${GOAL_HEAP_MIB} MiB: ${missed ? 'MISSED' : 'met'}`,
  );
  if (missed) process.exitCode = 1;
}
