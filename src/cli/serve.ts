import { type Command, InvalidArgumentError, Option } from 'commander';
import type { LogFormat } from '../observability/logger.js';
import { parsePort, type StoreOptions, storeConfig, storeOptions } from './options.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const LOG_FORMATS: LogFormat[] = ['json', 'pretty'];

interface ServeOptions extends StoreOptions {
  host: string;
  port: number;
  mqttPort: number;
  mqttUrl?: string;
  nodeId?: string;
  metricsToken?: string;
  tlsCert?: string;
  tlsKey?: string;
  mqttsPort: number;
  logLevel: string;
  logFormat: LogFormat;
}

/** A node id is part of an MQTT client id: printable ASCII without spaces, wildcards or slashes. */
function parseNodeId(text: string): string {
  if (!/^[A-Za-z0-9._:-]{1,64}$/.test(text)) {
    throw new InvalidArgumentError(`'${text}' is not a node id (1-64 of A-Z a-z 0-9 . _ : -).`);
  }
  return text;
}

const fail = (message: string): never => {
  process.stderr.write(`fleetjobs: ${message.split('\n')[0]}\n`);
  process.exit(1);
};

/** Why the start failed, with what to do about a port that is taken. */
function startFailure(error: unknown, options: ServeOptions): string {
  const message = error instanceof Error ? error.message : String(error);
  const { code, port } = error as { code?: string; port?: number };
  if (code !== 'EADDRINUSE') return message;
  const which =
    port === options.port
      ? ['HTTP', '--port', 'FLEETJOBS_PORT']
      : port === options.mqttsPort
        ? ['MQTT-over-TLS', '--mqtts-port', 'FLEETJOBS_MQTTS_PORT']
        : ['MQTT', '--mqtt-port', 'FLEETJOBS_MQTT_PORT'];
  return `${which[0]} port ${port ?? ''} is already in use (EADDRINUSE: another fleetjobs, or another program): choose another with ${which[1]} or ${which[2]}`;
}

/**
 * Starts the server and stops it on SIGTERM/SIGINT: in-flight requests finish, then dispatch and
 * the store close, and the process exits 0. The signals are caught from the start, so one that
 * arrives while the server is still starting stops it cleanly once it is up; a second one exits
 * at once.
 */
async function serve(options: ServeOptions): Promise<void> {
  // The service is loaded here, not at start, so that the admin commands start fast.
  const starting = import('../server.js').then(({ startServer }) =>
    startServer({
      ...storeConfig(options),
      host: options.host,
      port: options.port,
      mqttPort: options.mqttPort,
      mqttUrl: options.mqttUrl,
      nodeId: options.nodeId,
      metricsToken: options.metricsToken,
      tlsCert: options.tlsCert,
      tlsKey: options.tlsKey,
      mqttsPort: options.mqttsPort,
      logLevel: options.logLevel,
      logFormat: options.logFormat,
    }),
  );
  let stopping = false;
  const stop = () => {
    // A second signal (Ctrl-C again) does not wait any longer.
    if (stopping) fail('stopped before in-flight requests finished');
    stopping = true;
    starting
      .then((server) => server.close())
      .then(
        () => process.exit(0),
        (error: unknown) =>
          fail(`could not stop cleanly: ${error instanceof Error ? error.message : String(error)}`),
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // A failed start exits at once: nothing half-started may keep the process alive.
  await starting.catch((error: unknown) => fail(startFailure(error, options)));
}

export function registerServe(program: Command): void {
  storeOptions(
    program
      .command('serve')
      .description('run the service: the HTTP API and job dispatch over MQTT')
      .addOption(
        new Option('--host <host>', 'address to listen on').env('FLEETJOBS_HOST').default('127.0.0.1'),
      )
      .addOption(
        new Option('--port <port>', 'HTTP port').env('FLEETJOBS_PORT').default(8080).argParser(parsePort),
      ),
  )
    .addOption(
      new Option('--mqtt-port <port>', 'port of the embedded MQTT broker')
        .env('FLEETJOBS_MQTT_PORT')
        .default(1883)
        .argParser(parsePort),
    )
    .addOption(
      new Option('--mqtt-url <url>', 'external MQTT broker to use instead of the embedded one').env(
        'FLEETJOBS_MQTT_URL',
      ),
    )
    .addOption(
      new Option(
        '--node-id <id>',
        "this node's name in logs, metrics and its MQTT client id (default: host name and process id)",
      )
        .env('FLEETJOBS_NODE_ID')
        .argParser(parseNodeId),
    )
    .addOption(
      new Option('--tls-cert <file>', 'PEM certificate: serve HTTPS and MQTT over TLS').env(
        'FLEETJOBS_TLS_CERT',
      ),
    )
    .addOption(new Option('--tls-key <file>', 'PEM private key of --tls-cert').env('FLEETJOBS_TLS_KEY'))
    .addOption(
      new Option('--mqtts-port <port>', 'MQTT-over-TLS port of the embedded broker (with --tls-cert)')
        .env('FLEETJOBS_MQTTS_PORT')
        .default(8883)
        .argParser(parsePort),
    )
    .addOption(
      new Option('--metrics-token <token>', 'require Authorization: Bearer <token> on GET /metrics').env(
        'FLEETJOBS_METRICS_TOKEN',
      ),
    )
    .addOption(
      new Option('--log-level <level>', 'least severe log records written')
        .choices(LOG_LEVELS)
        .env('FLEETJOBS_LOG_LEVEL')
        .default('info'),
    )
    .addOption(
      new Option('--log-format <format>', 'json: one JSON object a line; pretty: for a terminal')
        .choices(LOG_FORMATS)
        .env('FLEETJOBS_LOG_FORMAT')
        .default('json'),
    )
    .action(serve);
}
