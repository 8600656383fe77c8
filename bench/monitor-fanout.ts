/**
 * Monitor fan-out benchmark (issue 11): a job to 10,000 simulated devices, timed from its creation
 * to `complete`, without a monitor and with one whose receiver (an HTTP server in this process)
 * gets every event. Goal: with the monitor at most 1.5× the time without. The receiver checks that
 * every target arrived in_progress then successful, in order, none missing, and the job's last
 * event is `complete`. The service is `fleetjobs serve` in a child process (the real delivery worker).
 *
 *   npx tsx bench/monitor-fanout.ts [--devices 10000] [--rounds 2] [--root DIR] [--baseline]
 *
 * `--root` runs the service of another checkout (e.g. /work/main); `--baseline` times only the
 * jobs without a monitor (for a checkout without monitors).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Simulator } from '../src/dispatch/simulator.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '2' },
    root: { type: 'string', default: join(import.meta.dirname, '..') },
    baseline: { type: 'boolean', default: false },
  },
});
const DEVICES = Number(values.devices);
const ROUNDS = Number(values.rounds);
const ROOT = values.root;
const GOAL = 1.5;

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-bench-monitor-'));
const db = join(dir, 'fleetjobs.db');
const [port, mqttPort] = [await freePort(), await freePort()];
const cli = ['--import', 'tsx', join(ROOT, 'src/cli/main.ts')];
spawnSync(
  process.execPath,
  [...cli, 'user', 'add', '--db', db, '--account', 'acme', '--username', 'alice', '--password', 's3cret'],
  { cwd: ROOT, stdio: 'ignore' },
);
const service: ChildProcess = spawn(
  process.execPath,
  [
    ...cli,
    'serve',
    '--db',
    db,
    '--port',
    String(port),
    '--mqtt-port',
    String(mqttPort),
    '--log-level',
    'warn',
  ],
  { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
);
const base = `http://127.0.0.1:${port}`;
const auth = { authorization: `Basic ${Buffer.from('alice:s3cret').toString('base64')}` };
const api = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { ...auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
};
for (;;) {
  try {
    if ((await fetch(`${base}/healthz`)).ok) break;
  } catch {
    await sleep(100);
  }
}

const devices: { id: string; token: string }[] = [];
for (let start = 0; start < DEVICES; start += 10_000) {
  const batch = Array.from({ length: Math.min(10_000, DEVICES - start) }, (_, index) => ({
    id: `00000000-00000000-0000BEEF-${(start + index + 1).toString(16).toUpperCase().padStart(8, '0')}`,
  }));
  const created = (await api('POST', '/ws/v1/devices/inventory', batch)).list as {
    id: string;
    device_token: string;
  }[];
  devices.push(...created.map((device) => ({ id: device.id, token: device.device_token })));
}
const simulator = new Simulator({
  mqttUrl: `mqtt://127.0.0.1:${mqttPort}`,
  devices,
  failRate: 0,
  latency: 0,
});
await simulator.start();
const offline = `/ws/v1/devices/inventory?size=1&query=${encodeURIComponent("connection_status = 'disconnected'")}`;
while ((await api('GET', offline)).count > 0) await sleep(100);

interface Msg {
  topic: string;
  jobs?: { id: number; job_status: string };
  job_targets?: { job_id: number; device_id: string; status: string };
}
const received: Msg[] = [];
let lastReceived = 0;
const receiver = createHttpServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    received.push(
      ...(JSON.parse(Buffer.concat(chunks).toString()) as { Document: { Msg: Msg[] } }).Document.Msg,
    );
    lastReceived = Date.now();
    response.end();
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/`;

/** Creates a job to every device and waits for it to complete: the milliseconds it took. */
async function runJob(): Promise<{ id: number; ms: number }> {
  const started = Date.now();
  const { id } = await api('POST', '/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { all: true } });
  for (;;) {
    const job = await api('GET', `/ws/v1/jobs/${id}`);
    if (job.job_status === 'complete' || job.job_status === 'failed') return { id, ms: Date.now() - started };
    await sleep(25);
  }
}

/** Every target of the job arrived in_progress then successful, in order; the job's last event is complete. */
function check(jobId: number): string {
  const byTarget = new Map<string, string[]>();
  const jobStatuses: string[] = [];
  for (const msg of received) {
    if (msg.job_targets?.job_id === jobId) {
      const list = byTarget.get(msg.job_targets.device_id) ?? [];
      list.push(msg.job_targets.status);
      byTarget.set(msg.job_targets.device_id, list);
    } else if (msg.jobs?.id === jobId) jobStatuses.push(msg.jobs.job_status);
  }
  const inOrder = [...byTarget.values()].filter((list) => list.join() === 'in_progress,successful').length;
  return `${byTarget.size} targets with events, ${inOrder} exactly in_progress→successful, job events ${jobStatuses.length} ending ${jobStatuses.at(-1)}`;
}

const without: number[] = [];
const withMonitor: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const plain = await runJob();
  without.push(plain.ms);
  console.log(
    `round ${round + 1}: job ${plain.id} to ${DEVICES} devices without a monitor: complete in ${plain.ms} ms`,
  );
  if (values.baseline) continue;
  const monitor = await api('POST', '/ws/v1/monitors/inventory', {
    topics: ['jobs', 'job_targets'],
    url: receiverUrl,
    batch_size: 1000,
    batch_duration: 1,
  });
  received.length = 0;
  const watched = await runJob();
  withMonitor.push(watched.ms);
  const expected = 2 * DEVICES;
  const waitStart = Date.now();
  while (
    received.filter((msg) => msg.job_targets !== undefined).length < expected &&
    Date.now() - waitStart < 120_000
  ) {
    await sleep(50);
  }
  await sleep(1500);
  console.log(
    `round ${round + 1}: job ${watched.id} with a monitor: complete in ${watched.ms} ms; ${received.length} events received, ` +
      `the last ${Math.max(0, lastReceived - waitStart)} ms after completion; ${check(watched.id)}`,
  );
  await api('DELETE', `/ws/v1/monitors/inventory/${monitor.id}`);
}

const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
console.log(`without a monitor: ${without.join(', ')} ms (median ${median(without)})`);
if (!values.baseline) {
  const ratio = median(withMonitor) / median(without);
  console.log(
    `with a monitor: ${withMonitor.join(', ')} ms (median ${median(withMonitor)}); ratio ${ratio.toFixed(2)} (goal ≤ ${GOAL})`,
  );
  if (ratio > GOAL) process.exitCode = 1;
}
await simulator.stop();
receiver.close();
service.kill('SIGTERM');
await new Promise((resolve) => service.once('exit', resolve));
rmSync(dir, { recursive: true, force: true });
