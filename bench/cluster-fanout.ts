/**
 * One job to many simulated devices (default 30,000) over MQTT: three nodes on PostgreSQL and
 * Mosquitto, beside one node on the same PostgreSQL and Mosquitto, and one node on SQLite with its
 * embedded broker. Prints, per setup, the time until every device was shown connected (and until
 * the simulators, started one after the other, had all their devices online at the broker), the
 * time from the job's creation to its completion and the peak RSS (VmHWM) of every process: the nodes, the simulators (`fleetjobs simulate`, several
 * processes) and Mosquitto. PostgreSQL is a throw-away embedded one per setup.
 *
 *   npx tsx bench/cluster-fanout.ts [--devices 30000] [--simulators 3] [--setups three,one-pg,one-sqlite]
 *     [--register before|live]
 *
 * The devices are registered over the API before the broker is set up (`--register before`, a
 * first node on its embedded broker; `broker-config` then writes their logins at once), or by the
 * simulators once the nodes run (`live`: each login reaches Mosquitto as a dynamic-security change,
 * after each of which Mosquitto 2.0 rewrites the plugin's whole file, so it costs in proportion to
 * the devices already there).
 *
 * Many connections: the broker holds one descriptor per device, so the open-file limit (`ulimit -n`,
 * inherited by every process this starts) must exceed the devices; the simulators connect to
 * different loopback addresses (127.0.0.N) so that 30,000 connections fit in the ephemeral ports.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ALICE, addAlice, api, Broker, fleetjobs, Node, within } from '../test/cluster/nodes.js';
import { freePort, ROOT } from '../test/process.js';
import { startEmbeddedPostgres } from '../test/setup/embedded-postgres.js';

const { values } = parseArgs({
  options: {
    devices: { type: 'string', default: '30000' },
    simulators: { type: 'string', default: '3' },
    setups: { type: 'string', default: 'three,one-pg,one-sqlite' },
    register: { type: 'string', default: 'before' },
  },
});
if (values.register !== 'before' && values.register !== 'live') throw new Error('--register before|live');
const DEVICES = Number(values.devices);
const SIMULATORS = Number(values.simulators);
const { username: USER, password: PASSWORD } = ALICE;
const MAIN = join(ROOT, 'src/cli/main.ts');

const seconds = (since: number) => ((Date.now() - since) / 1000).toFixed(1);

/** Peak resident set of a process, in MB (Linux: VmHWM). */
function peakRssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return Math.round(kb / 1024);
}

/** A simulated device's id and token (what `fleetjobs simulate` keeps in its state file). */
interface Identity {
  id: string;
  token: string;
}

/** Registers `count` devices over the API of the node at `apiUrl`, 1,000 per request. */
async function register(apiUrl: string, count: number): Promise<Identity[]> {
  const call = api(apiUrl, USER, PASSWORD);
  const devices: Identity[] = [];
  while (devices.length < count) {
    const chunk = Array.from({ length: Math.min(1_000, count - devices.length) }, (_, n) => ({
      id: `00000000-00000000-0000BE0C-${(devices.length + n).toString(16).toUpperCase().padStart(8, '0')}`,
    }));
    const made = await call<{ list: { id: string; device_token: string }[] }>(
      'POST',
      '/ws/v1/devices/inventory',
      chunk,
    );
    if (made.status !== 201) throw new Error(`registering devices failed: ${JSON.stringify(made.body)}`);
    devices.push(...made.body.list.map((device) => ({ id: device.id, token: device.device_token })));
  }
  return devices;
}

/**
 * `fleetjobs simulate` for `count` devices, given (written into its state file) or registered by
 * it; resolves once they are all online.
 */
async function startSimulator(
  n: number,
  apiUrl: string,
  mqttUrl: string,
  count: number,
  dir: string,
  devices: Identity[] | undefined,
): Promise<ChildProcess> {
  const stateFile = join(dir, `simulator-${n}.json`);
  if (devices) writeFileSync(stateFile, JSON.stringify({ url: apiUrl, prefix: `SIM${n}`, devices }));
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'simulate',
      '--url',
      apiUrl,
      '--mqtt-url',
      mqttUrl,
      '--username',
      USER,
      '--password',
      PASSWORD,
      '--count',
      String(count),
      '--latency',
      '1000',
      '--state-file',
      stateFile,
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  await within(30 * 60_000, `simulator ${n} online`, async () => {
    if (child.exitCode !== null) throw new Error(`simulator ${n} exited: ${output}`);
    return output.includes('devices online');
  });
  return child;
}

interface Setup {
  name: string;
  nodes: number;
  engine: 'postgres' | 'sqlite';
}

async function run(setup: Setup): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-fanout-'));
  const postgres = setup.engine === 'postgres' ? await startEmbeddedPostgres() : undefined;
  const store = postgres ? ['--database-url', postgres.url] : ['--db', join(dir, 'fleetjobs.db')];
  let broker: Broker | undefined;
  const nodes: Node[] = [];
  const simulators: ChildProcess[] = [];
  try {
    await addAlice(store);
    const registerStarted = Date.now();
    let devices: Identity[] | undefined;
    if (values.register === 'before') {
      const early = await Node.start('early', [...store, '--mqtt-port', String(await freePort())]);
      try {
        devices = await register(early.url, DEVICES);
      } finally {
        await early.stop();
      }
    }
    let deviceUrl: (n: number) => string;
    if (postgres) {
      const port = await freePort();
      const { config, mqtt_url: mqttUrl } = JSON.parse(
        await fleetjobs([
          'broker-config',
          '--dir',
          dir,
          '--port',
          String(port),
          '--host',
          '0.0.0.0',
          ...store,
        ]),
      );
      broker = await Broker.start(config, mqttUrl.replace('0.0.0.0', '127.0.0.1'));
      const nodeArgs = [...store, '--mqtt-url', mqttUrl.replace('0.0.0.0', '127.0.0.1')];
      for (let n = 0; n < setup.nodes; n++) nodes.push(await Node.start(`n${n}`, nodeArgs));
      deviceUrl = (n) => `mqtt://127.0.0.${n + 2}:${port}`;
    } else {
      const port = await freePort();
      nodes.push(await Node.start('n0', [...store, '--host', '0.0.0.0', '--mqtt-port', String(port)]));
      deviceUrl = (n) => `mqtt://127.0.0.${n + 2}:${port}`;
    }
    const registered = devices ? `registered before the broker in ${seconds(registerStarted)} s, ` : '';
    const apiUrl = (n: number) => (nodes[n % nodes.length] as Node).url;
    const connectStarted = Date.now();
    const share = Math.ceil(DEVICES / SIMULATORS);
    for (let n = 0; n < SIMULATORS; n++) {
      const count = Math.min(share, DEVICES - n * share);
      if (count <= 0) break;
      const given = devices?.slice(n * share, n * share + count);
      simulators.push(await startSimulator(n, apiUrl(n), deviceUrl(n), count, dir, given));
    }
    // the broker let every device in (what presence can be stored behind)
    const online = seconds(connectStarted);
    const call = api(apiUrl(0), USER, PASSWORD);
    // A page's `count` is the rows of that page: the store's total is the /metrics gauge.
    await within(30 * 60_000, 'every device connected', async () => {
      const metrics = await (await fetch(`${apiUrl(0)}/metrics`)).text();
      return Number(/^fleetjobs_devices_connected (\d+)$/m.exec(metrics)?.[1]) >= DEVICES;
    });
    const connected = seconds(connectStarted);
    const started = Date.now();
    const job = await call<{ id: number }>('POST', '/ws/v1/jobs/inventory', {
      job_type: 'reboot',
      targets: { all: true },
      timeout: 3_600,
    });
    if (job.status !== 201) throw new Error(`job not created: ${JSON.stringify(job.body)}`);
    const done = await within(60 * 60_000, 'the job complete', async () => {
      const body = (
        await call<{ job_status: string; progress_success: number }>('GET', `/ws/v1/jobs/${job.body.id}`)
      ).body;
      return body.job_status === 'complete' ? body : false;
    });
    const rss = [
      ...nodes.map((node) => `node ${node.id} ${peakRssMb(node.child.pid)} MB`),
      ...simulators.map((child, n) => `simulator ${n} ${peakRssMb(child.pid)} MB`),
      ...(broker ? [`mosquitto ${peakRssMb(broker.child.pid)} MB`] : []),
    ];
    console.log(
      `${setup.name}: one job to ${done.progress_success} devices complete in ${seconds(started)} s ` +
        `(devices ${registered}${values.register === 'live' ? 'registered and ' : ''}connected in ${connected} s, the simulators online after ${online} s); peak RSS: ${rss.join(', ')}`,
    );
  } finally {
    for (const child of simulators) child.kill('SIGKILL');
    for (const node of nodes) await node.stop('SIGKILL');
    await broker?.stop();
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// The broker (Mosquitto, or the embedded one in the SQLite node) holds a descriptor per device.
const openFiles = Number(execFileSync('sh', ['-c', 'ulimit -n']).toString());
if (openFiles < DEVICES + 1_000) {
  console.warn(
    `the open-file limit (${openFiles}) is below ${DEVICES} devices: raise it (ulimit -n, as root) before running this`,
  );
}

const SETUPS: Record<string, Setup> = {
  three: { name: 'three nodes, PostgreSQL + Mosquitto', nodes: 3, engine: 'postgres' },
  'one-pg': { name: 'one node, PostgreSQL + Mosquitto', nodes: 1, engine: 'postgres' },
  'one-sqlite': { name: 'one node, SQLite + embedded broker', nodes: 1, engine: 'sqlite' },
};
for (const name of values.setups.split(',')) {
  const setup = SETUPS[name];
  if (!setup) throw new Error(`unknown setup ${name}: ${Object.keys(SETUPS).join(', ')}`);
  await run(setup);
}
