import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import {
  DEVICE_ACL,
  DEVICE_ROLE,
  type DynsecClient,
  type DynsecFile,
  deviceClient,
  deviceRole,
  isDeviceClient,
  SERVICE_USERNAME,
  serviceRole,
} from '../dispatch/dynamic-security.js';
import { hashDeviceToken, randomSecret } from '../security/hashing.js';
import type { Store } from '../store/store.js';
import { action, parsePort, type StoreOptions, storeOptions, UsageError, withStore } from './options.js';

/** Where Debian (and other builds) install Mosquitto 2's dynamic-security plugin. */
const PLUGIN_PATHS = [
  '/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so',
  '/usr/lib/mosquitto_dynamic_security.so',
  '/usr/local/lib/mosquitto_dynamic_security.so',
];
const DEVICE_PAGE = 1_000;

interface BrokerConfigOptions extends StoreOptions {
  dir: string;
  port: number;
  host: string;
}

/** The service's own MQTT password, kept in DIR so that running again keeps it. */
function servicePassword(dir: string): string {
  const file = join(dir, 'fleetjobs-service.json');
  if (existsSync(file)) {
    const { password } = JSON.parse(readFileSync(file, 'utf8')) as { password?: unknown };
    if (typeof password === 'string' && password !== '') return password;
  }
  const password = randomSecret();
  writeFileSync(file, `${JSON.stringify({ username: SERVICE_USERNAME, password })}\n`, { mode: 0o600 });
  return password;
}

/** A client with a password hash in the plugin's format (that of the stored device tokens). */
function hashedClient(username: string, password: string, rolename: string): DynsecClient {
  const client = deviceClient(username, hashDeviceToken(password));
  if (client === null) throw new Error('hashing the service password failed');
  return { ...client, roles: [{ rolename }] };
}

/**
 * The plugin's file with the service's client and role, the devices' role, and a client for every
 * stored device (their token hashes as they are stored); what else the file holds stays, except
 * the clients of devices no longer stored (and the roles of one device each that files written
 * before DEVICE_ROLE hold).
 */
async function dynsecFile(path: string, store: Store, password: string): Promise<DynsecFile> {
  const file: DynsecFile = existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as DynsecFile)
    : {
        defaultACLAccess: {
          publishClientSend: false,
          publishClientReceive: false,
          subscribe: false,
          unsubscribe: false,
        },
        clients: [],
        groups: [],
        roles: [],
      };
  const clients = new Map(
    file.clients.filter((client) => !isDeviceClient(client)).map((client) => [client.username, client]),
  );
  const roles = new Map(
    file.roles
      .filter((role) => !role.rolename.startsWith(`${DEVICE_ROLE}-`))
      .map((role) => [role.rolename, role]),
  );
  const service = serviceRole();
  roles.set(service.rolename, service);
  roles.set(DEVICE_ROLE, deviceRole());
  clients.set(SERVICE_USERNAME, hashedClient(SERVICE_USERNAME, password, service.rolename));
  for (let after = ''; ; ) {
    const devices = await store.listDeviceCredentials(after, DEVICE_PAGE);
    for (const device of devices) {
      const client = deviceClient(device.id, device.token_hash);
      if (client !== null) clients.set(device.id, client);
    }
    const last = devices.at(-1);
    if (!last || devices.length < DEVICE_PAGE) break;
    after = last.id;
  }
  return { ...file, clients: [...clients.values()], roles: [...roles.values()] };
}

function mosquittoConf(dir: string, options: BrokerConfigOptions, plugin: string): string {
  return [
    '# Mosquitto 2 for fleetjobs, written by `fleetjobs broker-config` (running it again keeps it working).',
    '# Device logins live in the dynamic-security plugin; fleetjobs nodes change them over $CONTROL.',
    'per_listener_settings false',
    'allow_anonymous false',
    `listener ${options.port} ${options.host}`,
    `plugin ${plugin}`,
    `plugin_opt_config_file ${join(dir, 'dynamic-security.json')}`,
    // what the plugin does not decide (a device's topics) the ACL file does
    `acl_file ${join(dir, 'acl')}`,
    // Mosquitto drops QoS 1 messages beyond a client's queue (1,000 by default): a node busy for a
    // moment while thousands of devices report must not lose their statuses
    'max_queued_messages 100000',
    // retained presence and sessions survive a broker restart
    'persistence true',
    `persistence_location ${dir}/`,
    'log_dest stderr',
    // started as root, Mosquitto would switch to its own user, which cannot read this folder
    ...(process.getuid?.() === 0 ? ['user root'] : []),
    '',
  ].join('\n');
}

async function brokerConfig(options: BrokerConfigOptions): Promise<void> {
  const plugin = PLUGIN_PATHS.find((path) => existsSync(path));
  if (plugin === undefined) {
    throw new UsageError(
      "Mosquitto 2's dynamic-security plugin (mosquitto_dynamic_security.so) is not installed: apt-get install mosquitto",
    );
  }
  const dir = resolve(options.dir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const password = servicePassword(dir);
  const dynsecPath = join(dir, 'dynamic-security.json');
  const file = await withStore(options, (store) => dynsecFile(dynsecPath, store, password));
  writeFileSync(dynsecPath, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  writeFileSync(join(dir, 'acl'), DEVICE_ACL);
  const config = join(dir, 'mosquitto.conf');
  writeFileSync(config, mosquittoConf(dir, options, plugin));
  const host = options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
  const url = new URL(`mqtt://${host.includes(':') ? `[${host}]` : host}:${options.port}`);
  url.username = SERVICE_USERNAME;
  url.password = password;
  process.stdout.write(`${JSON.stringify({ config, mqtt_url: url.toString() })}\n`);
}

export function registerBrokerConfig(program: Command): void {
  storeOptions(
    program
      .command('broker-config')
      .description('write a Mosquitto 2 configuration for fleetjobs nodes and their devices into DIR')
      .requiredOption('--dir <dir>', 'the folder to write mosquitto.conf and the files it names into')
      .addOption(new Option('--port <port>', 'MQTT port of the broker').default(1883).argParser(parsePort))
      .addOption(new Option('--host <host>', 'address the broker listens on').default('127.0.0.1')),
  ).action(action(brokerConfig));
}
