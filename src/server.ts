import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { defaultNodeId, startDispatch } from './dispatch/index.js';
import { JobService } from './jobs/service.js';
import { MonitorDelivery } from './monitors/delivery.js';
import { createLogger, type LogFormat } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { openStore, type StoreConfig } from './store/open.js';

export interface ServerConfig extends StoreConfig {
  host: string;
  port: number;
  mqttPort: number;
  mqttUrl?: string | undefined;
  /** This node's name in logs, metrics and its MQTT client id (CONTRACT §8); default host name and pid. */
  nodeId?: string | undefined;
  /** Without one, a logger on standard output at `logLevel` (default info) in `logFormat` (json). */
  logger?: Logger;
  logLevel?: string;
  logFormat?: LogFormat;
  /** PEM files: HTTPS, and MQTT over TLS on `mqttsPort` (embedded broker). Both or neither. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  mqttsPort?: number;
  /** When set, `GET /metrics` requires `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
}

export interface RunningServer {
  /** `http://host:port` (or `https://`) as actually bound (a port of 0 picks a free one). */
  url: string;
  mqttPort: number | undefined;
  /** The embedded broker's MQTT-over-TLS port, with TLS. */
  mqttsPort: number | undefined;
  /** Stops accepting, finishes in-flight requests, then closes dispatch and the store. */
  close(): Promise<void>;
}

export const CREATE_USER_HINT =
  'No users yet: create one with `bin/fleetjobs user add --account ACCOUNT --username NAME` and type the password on the next line, or give `--password`.';

/** How long a shutdown waits for in-flight requests (a slow export, say) before cutting them off. */
const SHUTDOWN_GRACE_MS = 30_000;

/** How often a shutdown closes the connections whose requests finished since it began. */
const SHUTDOWN_IDLE_SWEEP_MS = 50;

/** At most how long a shutdown waits for the event loop to take what clients sent (traffic that never stops). */
const SHUTDOWN_SETTLE_MAX_MS = 5_000;

const loopTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Resolves once a whole turn of the event loop took no new connection and read no new request. A
 * connection the loop has not taken yet, or one whose request it has not read yet (a busy loop),
 * looks idle, and closing would drop it unanswered (measured: 144 of 150 page requests sent to a
 * busy server 300 ms before SIGTERM were reset).
 */
async function settle(server: FastifyInstance['server']): Promise<void> {
  let arrivals = 0;
  const arrived = () => {
    arrivals++;
  };
  server.on('connection', arrived);
  server.on('request', arrived);
  const deadline = performance.now() + SHUTDOWN_SETTLE_MAX_MS;
  try {
    for (let seen = -1; seen !== arrivals && performance.now() < deadline; ) {
      seen = arrivals;
      // Two turns: a connection taken in one is read in the next.
      await loopTurn();
      await loopTurn();
    }
  } finally {
    server.off('connection', arrived);
    server.off('request', arrived);
  }
}

/**
 * Stops accepting and finishes in-flight requests, but not forever: a client that stops reading is
 * cut off. First the requests clients already sent are read (settle). Closing closes only the
 * connections idle at that moment; one whose response (an export streamed from the read workers,
 * say) ends later would stay open until the client's keep-alive ends, so those are closed as they
 * fall idle.
 */
async function closeHttp(app: FastifyInstance): Promise<void> {
  await settle(app.server);
  const cutOff = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  const idleSweep = setInterval(() => app.server.closeIdleConnections(), SHUTDOWN_IDLE_SWEEP_MS);
  cutOff.unref();
  idleSweep.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(cutOff);
    clearInterval(idleSweep);
  }
}

/** A URL fit for a log: any password in it masked. */
const withoutPassword = (text: string | undefined): string => {
  try {
    const url = new URL(text ?? '');
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
};

export const DEFAULT_MQTTS_PORT = 8883;

/** The certificate and key of `--tls-cert` / `--tls-key`, read at start: a bad path fails the start. */
function readTls(config: ServerConfig): { cert: Buffer; key: Buffer } | undefined {
  if (config.tlsCert === undefined && config.tlsKey === undefined) return undefined;
  if (config.tlsCert === undefined || config.tlsKey === undefined) {
    throw new Error('TLS needs both --tls-cert and --tls-key');
  }
  const read = (path: string, option: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read ${option} ${path}: ${(error as Error).message}`);
    }
  };
  return { cert: read(config.tlsCert, '--tls-cert'), key: read(config.tlsKey, '--tls-key') };
}

/** Opens the store, starts job dispatch over MQTT, then serves the HTTP API. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  // the name dispatch takes when none is given, in this same process
  const nodeId = config.nodeId ?? defaultNodeId();
  const logger = (
    config.logger ?? (await createLogger(config.logLevel ?? 'info', config.logFormat ?? 'json'))
  ).child({ node: nodeId });
  const tls = readTls(config);
  const metrics = new Metrics(() => store.totals());
  metrics.nameNode(nodeId);
  const store = await openStore({ ...config, onQuery: metrics.storeQuery });
  const closers: (() => Promise<void>)[] = [
    async () => {
      metrics.close();
      await store.close();
    },
  ];
  const closeAll = async () => {
    for (const close of closers.splice(0)) await close();
  };
  try {
    const jobs = new JobService(store);
    const dispatch = await startDispatch({
      store,
      jobs,
      mqttHost: config.host,
      mqttPort: config.mqttPort,
      mqttUrl: config.mqttUrl,
      nodeId: config.nodeId,
      mqttTls: tls === undefined ? undefined : { ...tls, port: config.mqttsPort ?? DEFAULT_MQTTS_PORT },
      logger,
      metrics,
    });
    closers.unshift(() => dispatch.close());
    const delivery = new MonitorDelivery({ store, logger, metrics });
    delivery.start();
    closers.unshift(() => delivery.stop());
    const app = await buildApp({
      store,
      jobs,
      logger,
      metrics,
      metricsToken: config.metricsToken,
      https: tls,
      readiness: () => dispatch.unready(),
    });
    closers.unshift(() => closeHttp(app));
    const mqtt =
      dispatch.port === undefined
        ? `MQTT broker ${withoutPassword(config.mqttUrl)}`
        : `MQTT broker on port ${dispatch.port}${dispatch.tlsPort === undefined ? '' : ` (TLS on ${dispatch.tlsPort})`}`;
    await app.listen({
      host: config.host,
      port: config.port,
      listenTextResolver: (address) => `fleetjobs listening on ${address}, ${mqtt}`,
    });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `${tls === undefined ? 'http' : 'https'}://${host}:${address.port}`;
    // A plain line on stderr, not a JSON log record: it is meant for the person who just ran `npm start`.
    if ((await store.countUsers()) === 0) process.stderr.write(`${CREATE_USER_HINT}\n`);
    return { url, mqttPort: dispatch.port, mqttsPort: dispatch.tlsPort, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
