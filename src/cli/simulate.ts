import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { SimulatedIdentity, Simulator } from '../dispatch/simulator.js';

const REGISTER_CHUNK = 1_000;

interface SimulateOptions {
  url: string;
  mqttUrl: string;
  username: string;
  password: string;
  count: number;
  failRate: number;
  failDevices?: string;
  failShare: number;
  offlineRate: number;
  offlineFor: number;
  latency: number;
  group?: string;
  tags?: string;
  stateFile?: string;
}

/** The devices a simulator registered, kept with their tokens so later runs reuse them. */
interface SimulatorState {
  url: string;
  prefix: string;
  devices: SimulatedIdentity[];
}

const readState = (path: string): SimulatorState | null => {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as SimulatorState;
  } catch {
    return null;
  }
};

const writeState = (path: string, state: SimulatorState) => {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
};

/** fetch says only "fetch failed"; its cause says why (ECONNREFUSED, a certificate, …). */
const reason = (error: unknown): string => {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.message ?? cause?.code ?? (error instanceof Error ? error.message : String(error));
};

const WHERE_HINT = 'is `fleetjobs serve` running there? --url, or FLEETJOBS_PORT, names the HTTP API to use';

const hex8 = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');

/**
 * Registers `count` new devices over the HTTP API, adding them with their tokens to the state file
 * after every chunk: a run stopped halfway keeps the devices it registered (their tokens are shown
 * only once), so the next run does not try their ids again.
 */
async function register(
  options: SimulateOptions,
  state: SimulatorState,
  stateFile: string,
  count: number,
): Promise<void> {
  let created = 0;
  const auth = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
  const tags = options.tags
    ? options.tags
        .split(',')
        .map((tag) => tag.trim())
        .filter(Boolean)
    : undefined;
  let index = state.devices.length;
  while (created < count) {
    const chunk = Array.from({ length: Math.min(REGISTER_CHUNK, count - created) }, () => ({
      id: `00000000-00000000-${state.prefix}-${hex8(++index)}`,
      name: `simulated device ${index}`,
      ...(options.group ? { group: options.group } : {}),
      ...(tags ? { tags } : {}),
    }));
    const url = new URL('/ws/v1/devices/inventory', options.url);
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify(chunk),
    }).catch((error: unknown) => {
      throw new Error(`cannot reach fleetjobs at ${url.origin}: ${reason(error)} (${WHERE_HINT})`);
    });
    const body = (await response.json().catch(() => null)) as {
      list?: { id: string; device_token: string }[];
      error_message?: string;
    } | null;
    if (response.status !== 201 || !body?.list) {
      throw new Error(`registering devices failed: ${response.status} ${body?.error_message ?? ''}`.trim());
    }
    state.devices.push(...body.list.map((device) => ({ id: device.id, token: device.device_token })));
    writeState(stateFile, state);
    created += body.list.length;
  }
}

const progressLine = (simulator: Simulator) => {
  const c = simulator.counts;
  return `devices ${c.connected}/${c.devices} connected · requests ${c.requests} · successful ${c.successful} · failed ${c.failed} · canceled ${c.canceled} · went offline ${c.offline}`;
};

async function simulate(options: SimulateOptions): Promise<void> {
  const stateFile = options.stateFile ?? `./data/simulator-${options.username}.json`;
  const saved = readState(stateFile);
  const state: SimulatorState =
    saved && saved.url === options.url
      ? saved
      : { url: options.url, prefix: randomBytes(4).toString('hex').toUpperCase(), devices: [] };
  if (state.devices.length < options.count) {
    const missing = options.count - state.devices.length;
    await register(options, state, stateFile, missing);
    console.log(`registered ${missing} devices (tokens kept in ${stateFile})`);
  }
  // Loaded here, not at start: the MQTT client is only for this command.
  const { Simulator } = await import('../dispatch/simulator.js');
  const simulator = new Simulator({
    mqttUrl: options.mqttUrl,
    devices: state.devices.slice(0, options.count),
    failRate: options.failRate,
    ...(options.failDevices ? { failDevices: options.failDevices.split(',').map((id) => id.trim()) } : {}),
    failShare: options.failShare,
    offlineRate: options.offlineRate,
    offlineMs: options.offlineFor,
    latency: options.latency,
  });
  await simulator.start();
  console.log(`${options.count} devices online at ${options.mqttUrl}; answering job requests (Ctrl-C stops)`);
  const interactive = process.stdout.isTTY;
  let last = '';
  const timer = setInterval(() => {
    const line = progressLine(simulator);
    if (line === last) return;
    last = line;
    if (interactive) process.stdout.write(`\r${line}\u001b[K`);
    else console.log(line);
  }, 1_000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  await simulator.stop();
  console.log(`${interactive ? '\n' : ''}${progressLine(simulator)}; devices offline`);
}

/** A number option; a bad one is a one-line usage error, not a stack trace. */
const number =
  (name: string, min: number, max: number, integer = false) =>
  (value: string) => {
    const parsed = value.trim() === '' ? Number.NaN : Number(value);
    if (!Number.isFinite(parsed) || parsed < min || parsed > max || (integer && !Number.isInteger(parsed))) {
      throw new InvalidArgumentError(
        `--${name} must be ${integer ? 'a whole number' : 'a number'} from ${min} to ${max}.`,
      );
    }
    return parsed;
  };

/** Where the service runs by default: the same environment variables as `fleetjobs serve`. */
const defaultPort = (variable: string, fallback: number) => process.env[variable] ?? String(fallback);

export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('simulated devices that connect over MQTT and answer job requests')
    .option(
      '--url <url>',
      'the fleetjobs HTTP API (default port: FLEETJOBS_PORT, else 8080)',
      `http://127.0.0.1:${defaultPort('FLEETJOBS_PORT', 8080)}`,
    )
    .option(
      '--mqtt-url <url>',
      'the MQTT broker devices connect to (default port: FLEETJOBS_MQTT_PORT, else 1883)',
      `mqtt://127.0.0.1:${defaultPort('FLEETJOBS_MQTT_PORT', 1883)}`,
    )
    .requiredOption('--username <name>', 'user that registers the devices')
    .requiredOption('--password <password>', "that user's password")
    .option('--count <n>', 'how many devices', number('count', 1, 100_000, true), 10)
    .option(
      '--fail-rate <r>',
      'fraction of requests that fail, at random (0-1)',
      number('fail-rate', 0, 1),
      0,
    )
    .option(
      '--fail-share <r>',
      'fraction of the devices that fail every request (0-1)',
      number('fail-share', 0, 1),
      0,
    )
    .option('--fail-devices <ids>', 'comma-separated device ids that fail every request')
    .option(
      '--offline-rate <r>',
      'fraction of requests on which the device goes offline without answering (0-1)',
      number('offline-rate', 0, 1),
      0,
    )
    .option(
      '--offline-for <ms>',
      'how long a device that went offline stays away',
      number('offline-for', 0, 86_400_000),
      2_000,
    )
    .option('--latency <ms>', 'milliseconds before a device answers', number('latency', 0, 86_400_000), 1_000)
    .option('--group <path>', 'group of newly registered devices')
    .option('--tags <a,b>', 'tags of newly registered devices')
    .option(
      '--state-file <path>',
      'where device ids and tokens are kept (default ./data/simulator-<username>.json)',
    )
    .action(async (options: SimulateOptions) => {
      try {
        await simulate(options);
      } catch (error) {
        console.error(`fleetjobs simulate: ${error instanceof Error ? error.message : String(error)}`);
        process.exitCode = 1;
      }
    });
}
