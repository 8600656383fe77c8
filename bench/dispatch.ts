/**
 * Dispatch benchmark (issue 4): a job to 10,000 simulated devices, all connected, zero latency,
 * must reach `complete` in under 10 s with the service's RSS under 500 MB; then a job during which
 * 5% of the devices drop their connection and come back must still end with every target in
 * exactly one terminal state. The service runs in a child process, so its RSS is its own.
 *
 *   npx tsx bench/dispatch.ts [--devices 10000] [--churn 0.05]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { Simulator } from '../src/dispatch/simulator.js';
import type { JobDetail, JobTarget, TargetStatus } from '../src/model/job.js';
import { parseQuery } from '../src/query/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

const { values } = parseArgs({
  options: { devices: { type: 'string', default: '10000' }, churn: { type: 'string', default: '0.05' } },
});
const DEVICES = Number(values.devices);
const CHURN = Number(values.churn);
const SERVICE_SCRIPT = join(import.meta.dirname, '../test/dispatch/service-process.ts');

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });

/** Peak and current resident memory of a process, in MB (Linux /proc). */
const memoryOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-bench-dispatch-'));
  const dbPath = join(dir, 'fleetjobs.db');
  const port = await freePort();
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', 'tsx', SERVICE_SCRIPT, dbPath, String(port)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream })[Symbol.asyncIterator]();
  const nextLine = async () => (await lines.next()).value as string;
  const command = async <T>(body: object): Promise<T> => {
    child.stdin?.write(`${JSON.stringify(body)}\n`);
    return JSON.parse(await nextLine()) as T;
  };
  if ((await nextLine()) !== 'ready') throw new Error('service did not start');
  const pid = child.pid as number;

  const devices: { id: string; token: string }[] = [];
  for (let left = DEVICES; left > 0; left -= 10_000) {
    devices.push(...(await command<{ id: string; token: string }[]>({ addDevices: Math.min(left, 10_000) })));
  }
  const store = await openSqliteStore(dbPath);
  const account = await store.ensureAccount('acme', Date.now());
  const simulator = new Simulator({ mqttUrl: `mqtt://127.0.0.1:${port}`, devices, failRate: 0, latency: 0 });
  let started = Date.now();
  await simulator.start();
  const disconnected = parseQuery("connection_status = 'disconnected'", 'devices');
  const order = { field: 'id', direction: 'asc' as const };
  while (
    (await store.listDevices({ accountId: account.id, query: disconnected, order, after: null, limit: 1 }))
      .length > 0
  ) {
    await sleep(50);
  }
  console.log(`${DEVICES} devices connected in ${Date.now() - started} ms`);

  const runJob = async (label: string, during?: () => void) => {
    started = Date.now();
    const { id } = await command<{ id: number }>({
      createJob: { job_type: 'reboot', targets: { all: true } },
    });
    during?.();
    let job: JobDetail | undefined;
    for (;;) {
      job = await store.getJob(account.id, id);
      if (job && job.job_status !== 'new' && job.job_status !== 'in_progress') break;
      await sleep(25);
    }
    const elapsed = Date.now() - started;
    const statuses = new Map<TargetStatus, number>();
    let after = null as { value: string; key: string } | null;
    let targets = 0;
    for (;;) {
      const page: JobTarget[] =
        (await store.listTargets(id, {
          accountId: account.id,
          query: null,
          order: { field: 'device_id', direction: 'asc' },
          after,
          limit: 1000,
        })) ?? [];
      for (const target of page) statuses.set(target.status, (statuses.get(target.status) ?? 0) + 1);
      targets += page.length;
      const last = page.at(-1);
      if (!last || page.length < 1000) break;
      after = { value: last.device_id, key: last.device_id };
    }
    const memory = memoryOf(pid);
    console.log(
      `${label}: job ${job.job_status} in ${elapsed} ms · targets ${targets}/${job.target_count} ` +
        `${JSON.stringify(Object.fromEntries(statuses))} · counts ok ${job.progress_success + job.progress_failures + job.progress_canceled === job.target_count && job.progress_pending === 0} ` +
        `· service RSS ${memory.now.toFixed(0)} MB (peak ${memory.peak.toFixed(0)} MB)`,
    );
  };

  await runJob(`job to ${DEVICES} devices, zero latency`);

  simulator.options.latency = 500;
  const churned = Math.round(DEVICES * CHURN);
  await runJob(`job with ${churned} devices (${CHURN * 100}%) dropping and reconnecting mid-job`, () => {
    setTimeout(() => {
      for (let index = 0; index < churned; index++) simulator.drop(Math.floor((index * DEVICES) / churned));
    }, 250);
  });
  console.log(`simulator: ${JSON.stringify(simulator.counts)}`);

  await simulator.stop();
  await store.close();
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}

await main();
