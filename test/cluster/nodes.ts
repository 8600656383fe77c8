/**
 * Helpers of the several-nodes tests (CONTRACT §8): fleetjobs nodes and Mosquitto as child
 * processes, the CLI from source (tsx), and a user's HTTP calls.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { freePort, ROOT, runNode } from '../process.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { MOSQUITTO } from '../setup/system-programs.js';

const MAIN = join(ROOT, 'src/cli/main.ts');

/** Runs a fleetjobs command (not serve) from source; rejects with its stderr when it fails. */
export async function fleetjobs(args: string[], stdin = ''): Promise<string> {
  const result = await runNode(['--import', 'tsx', MAIN, ...args], stdin);
  if (result.code !== 0) throw new Error(`fleetjobs ${args[0]} failed: ${result.stderr}`);
  return result.stdout;
}

/** Polls `check` every 20 ms until it is truthy; rejects after `ms`. */
export async function within<T>(
  ms: number,
  what: string,
  check: () => Promise<T | false | undefined>,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill(signal);
  return exited;
}

/** Mosquitto started on the configuration `fleetjobs broker-config` wrote. */
export class Broker {
  private constructor(readonly child: ChildProcess) {}

  static async start(config: string, serviceUrl: string): Promise<Broker> {
    const child = spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'ignore', 'ignore'] });
    const broker = new Broker(child);
    await within(10_000, 'mosquitto listening', async () => {
      const client = await mqtt.connectAsync(serviceUrl, { reconnectPeriod: 0, connectTimeout: 1_000 });
      await client.endAsync();
      return true;
    });
    return broker;
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return stopChild(this.child, signal);
  }
}

/** The user of the tests that run a cluster: alice of account acme. */
export const ALICE = { username: 'alice', password: 'alice-password-1' };

/** Adds the user ALICE (account acme) to the store of `storeArgs` (`--database-url …` or `--db …`). */
export async function addAlice(storeArgs: string[]): Promise<void> {
  await fleetjobs([
    'user',
    'add',
    '--account',
    'acme',
    '--username',
    ALICE.username,
    '--password',
    ALICE.password,
    ...storeArgs,
  ]);
}

/**
 * What nodes of a cluster share: a new PostgreSQL database with the user ALICE, and a Mosquitto
 * set up for it by `fleetjobs broker-config` in `dir`, started. `nodeArgs` start a node on both.
 */
export async function startClusterBackends(dir: string) {
  const store = ['--database-url', await newPostgresDatabase()];
  await addAlice(store);
  const port = await freePort();
  const { config, mqtt_url: mqttUrl } = JSON.parse(
    await fleetjobs(['broker-config', '--dir', dir, '--port', String(port), ...store]),
  ) as { config: string; mqtt_url: string };
  const broker = await Broker.start(config, mqttUrl);
  return { broker, deviceUrl: `mqtt://127.0.0.1:${port}`, nodeArgs: [...store, '--mqtt-url', mqttUrl] };
}

/** `fleetjobs serve` as a child process, one node of the service. */
export class Node {
  stderr = '';

  private constructor(
    readonly id: string,
    readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      this.stderr += text;
    });
  }

  /** Starts a node; resolves once it answers /healthz (rejects with its stderr if it exits first). */
  static async start(id: string, args: string[]): Promise<Node> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'serve',
        '--port',
        String(port),
        '--node-id',
        id,
        '--log-level',
        'warn',
        ...args,
      ],
      { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const node = new Node(id, child, `http://127.0.0.1:${port}`);
    const exited = new Promise<never>((_, reject) =>
      child.once('exit', (code) => reject(new Error(`node ${id} exited (${code}): ${node.stderr}`))),
    );
    await Promise.race([
      exited,
      within(60_000, `node ${id} up`, async () => (await fetch(`${node.url}/healthz`)).ok),
    ]);
    exited.catch(() => undefined);
    return node;
  }

  /** Exits with the process's status: a node that refuses to start. */
  static async refused(id: string, args: string[]): Promise<{ code: number | null; stderr: string }> {
    const port = await freePort();
    const result = await runNode([
      '--import',
      'tsx',
      MAIN,
      'serve',
      '--port',
      String(port),
      '--node-id',
      id,
      ...args,
    ]);
    return { code: result.code, stderr: result.stderr };
  }

  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    return stopChild(this.child, signal);
  }
}

/** A user's calls to one node's API (HTTP basic authentication). */
export function api(baseUrl: string, username: string, password: string) {
  const authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  return async <T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: { authorization, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: (text === '' ? {} : JSON.parse(text)) as T };
  };
}

/** Connects as a device; resolves the client once connected, rejects when refused. */
export function deviceLogin(brokerUrl: string, id: string, token: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(brokerUrl, {
    clientId: id,
    username: id,
    password: token,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 2_000,
  });
}

/** What a simulated device was asked: each request (or cancel) with when it arrived. */
export interface Asked {
  device: string;
  job: number;
  at: number;
}

/** A result a simulated device reported, with when it sent it. */
export interface Told extends Asked {
  status: string;
}

/**
 * Devices speaking CONTRACT §7 that note every request and cancel: each works `latency` ms on a
 * job and reports `result(device id)` (success unless told); a request for a job it already has is
 * a duplicate, answered with its result; a cancel before its result is answered `canceled`.
 */
export class Fleet {
  readonly requests: Asked[] = [];
  readonly cancels: Asked[] = [];
  readonly reports: Told[] = [];
  /** `device job` of every request received. */
  readonly #asked = new Set<string>();
  readonly #clients: mqtt.MqttClient[] = [];

  constructor(
    readonly brokerUrl: string,
    readonly latency: number,
    readonly result: (device: string) => string = () => 'successful',
  ) {}

  async connect(devices: { id: string; device_token: string }[]): Promise<void> {
    for (let start = 0; start < devices.length; start += 50) {
      await Promise.all(devices.slice(start, start + 50).map((device) => this.#connect(device)));
    }
  }

  async #connect({ id, device_token }: { id: string; device_token: string }): Promise<void> {
    const presence = `fleetjobs/${id}/presence`;
    // its login may reach the broker a moment after the device was created
    const client = await within(30_000, `device ${id} logs in`, () =>
      mqtt.connectAsync(this.brokerUrl, {
        clientId: id,
        username: id,
        password: device_token,
        protocolVersion: 4,
        reconnectPeriod: 0,
        will: { topic: presence, payload: Buffer.from('offline'), qos: 1, retain: true },
      }),
    );
    this.#clients.push(client);
    /** Per job: its result once reported. */
    const done = new Map<number, string>();
    const working = new Map<number, NodeJS.Timeout>();
    const report = (job: number, status: string) => {
      done.set(job, status);
      working.delete(job);
      this.reports.push({ device: id, job, at: Date.now(), status });
      if (client.connected)
        client.publish(`fleetjobs/${id}/jobs/${job}/status`, JSON.stringify({ status }), { qos: 1 });
    };
    client.on('message', (topic) => {
      const [, , , jobText, kind] = topic.split('/');
      const job = Number(jobText);
      if (kind === 'cancel') {
        this.cancels.push({ device: id, job, at: Date.now() });
        clearTimeout(working.get(job));
        if (working.has(job)) report(job, 'canceled');
        return;
      }
      if (kind !== 'request') return;
      const repeat = this.#asked.has(`${id} ${job}`);
      this.#asked.add(`${id} ${job}`);
      this.requests.push({ device: id, job, at: Date.now() });
      if (repeat) {
        const result = done.get(job);
        if (result !== undefined) report(job, result);
        return;
      }
      working.set(
        job,
        setTimeout(() => report(job, this.result(id)), this.latency),
      );
    });
    await client.subscribeAsync([`fleetjobs/${id}/jobs/+/request`, `fleetjobs/${id}/jobs/+/cancel`], {
      qos: 1,
    });
    await client.publishAsync(presence, 'online', { qos: 1, retain: true });
  }

  async close(): Promise<void> {
    await Promise.all(this.#clients.map((client) => client.endAsync(true)));
  }
}
