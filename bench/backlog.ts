/**
 * Dispatch backlog (issue 9, item 2): 600 jobs created at once to 300 simulated devices (180,000
 * requests). Goals (CONTRACT §13): every target `successful`, the service's RSS under 1 GiB, no
 * event-loop stall over 100 ms. Prints the time to finish every job, the targets by status, the
 * service's peak RSS and its worst event-loop delay. The service runs in a child process, so its
 * RSS and event loop are its own.
 *
 *   npx tsx bench/backlog.ts [--jobs 600] [--devices 300] [--latency 0]
 *   (SERVICE_NODE_ARGS="--cpu-prof" passes node options to the service process)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Simulator } from '../src/dispatch/simulator.js';
import { freePort } from '../test/process.js';

const { values } = parseArgs({
  options: {
    jobs: { type: 'string', default: '600' },
    devices: { type: 'string', default: '300' },
    latency: { type: 'string', default: '0' },
  },
});
const JOBS = Number(values.jobs);
const DEVICES = Number(values.devices);
const SERVICE_SCRIPT = join(import.meta.dirname, '../test/dispatch/service-process.ts');
const MAX_RSS_MB = 1024;
const MAX_LOOP_DELAY_MS = 100;

/** Peak resident memory of a process, in MB (Linux /proc). */
const peakRssOf = (pid: number) =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** CPU time (user + system) a process used so far, in seconds (Linux /proc, clock ticks of 10 ms). */
const cpuSecondsOf = (pid: number) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-bench-backlog-'));
const dbPath = join(dir, 'fleetjobs.db');
const port = await freePort();
const child = spawn(
  process.execPath,
  [
    ...(process.env.SERVICE_NODE_ARGS?.split(' ') ?? []),
    '--import',
    'tsx',
    SERVICE_SCRIPT,
    dbPath,
    String(port),
  ],
  {
    stdio: ['pipe', 'pipe', 'inherit'],
  },
);
const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
const nextLine = async () => (await lines.next()).value as string;
const command = async <T>(body: object): Promise<T> => {
  child.stdin.write(`${JSON.stringify(body)}\n`);
  return JSON.parse(await nextLine()) as T;
};
if ((await nextLine()) !== 'ready') throw new Error('service did not start');
const pid = child.pid as number;

const devices = await command<{ id: string; token: string }[]>({ addDevices: DEVICES });
const simulator = new Simulator({
  mqttUrl: `mqtt://127.0.0.1:${port}`,
  devices,
  failRate: 0,
  latency: Number(values.latency),
});
await simulator.start();
const db = new Database(dbPath, { readonly: true });
const count = (query: string) => (db.prepare(query).get() as { n: number }).n;
while (count(`select count(*) as n from devices where connection_status = 'connected'`) < DEVICES) {
  await sleep(50);
}

const connecting = await command<{ max: number; p99: number }>({ loopDelay: true });
console.log(`${DEVICES} devices connected: event-loop delay max ${connecting.max.toFixed(0)} ms meanwhile`);

const started = Date.now();
const cpuBefore = cpuSecondsOf(pid);
for (let i = 0; i < JOBS; i++) {
  await command({ createJob: { job_type: 'reboot', targets: { all: true } } });
}
const created = Date.now() - started;
while (count(`select count(*) as n from jobs where job_status in ('new', 'in_progress')`) > 0) {
  await sleep(250);
}
const elapsed = Date.now() - started;
const cpu = cpuSecondsOf(pid) - cpuBefore;
const statuses = Object.fromEntries(
  (
    db.prepare('select status, count(*) as n from job_targets group by status').all() as {
      status: string;
      n: number;
    }[]
  ).map((row) => [row.status, row.n]),
);
const loop = await command<{ max: number; p99: number }>({ loopDelay: true });
const peak = peakRssOf(pid);
const successful = statuses.successful ?? 0;
console.log(
  `${JOBS} jobs × ${DEVICES} devices (latency ${values.latency} ms): created in ${created} ms, ` +
    `every job finished in ${(elapsed / 1000).toFixed(1)} s (service CPU ${cpu.toFixed(1)} s) · targets ${JSON.stringify(statuses)} · ` +
    `service peak RSS ${peak.toFixed(0)} MB · event-loop delay max ${loop.max.toFixed(0)} ms, p99 ${loop.p99.toFixed(0)} ms`,
);
const missed = [
  successful < JOBS * DEVICES && `${JOBS * DEVICES - successful} targets not successful`,
  peak > MAX_RSS_MB && `RSS over ${MAX_RSS_MB} MB`,
  loop.max > MAX_LOOP_DELAY_MS && `event-loop delay over ${MAX_LOOP_DELAY_MS} ms`,
].filter(Boolean);
if (missed.length > 0) {
  console.log(`missed: ${missed.join(', ')}`);
  process.exitCode = 1;
}

db.close();
await simulator.stop();
const exited = new Promise((resolve) => child.once('exit', resolve));
child.kill('SIGTERM');
console.log(`service stopped by SIGTERM with exit status ${await exited}`);
rmSync(dir, { recursive: true, force: true });
