import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { startDispatch } from './dispatch/index.js';
import { JobService } from './jobs/service.js';
import { createLogger, type LogFormat } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { openStore, type StoreConfig } from './store/open.js';

export interface ServerConfig extends StoreConfig {
  host: string;
  port: number;
  mqttPort: number;
  mqttUrl?: string | undefined;
  /** Without one, a logger on standard output at `logLevel` (default info) in `logFormat` (json). */
  logger?: Logger;
  logLevel?: string;
  logFormat?: LogFormat;
  /** When set, `GET /metrics` requires `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
}

export interface RunningServer {
  /** `http://host:port` as actually bound (a port of 0 picks a free one). */
  url: string;
  mqttPort: number | undefined;
  /** Stops accepting, finishes in-flight requests, then closes dispatch and the store. */
  close(): Promise<void>;
}

export const CREATE_USER_HINT =
  'No users yet: create one with `bin/fleetjobs user add --account ACCOUNT --username NAME` and type the password on the next line, or give `--password`.';

/** How long a shutdown waits for in-flight requests (a slow export, say) before cutting them off. */
const SHUTDOWN_GRACE_MS = 30_000;

/** Stops accepting and finishes in-flight requests, but not forever: a client that stops reading is cut off. */
async function closeHttp(app: FastifyInstance): Promise<void> {
  const cutOff = setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  cutOff.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(cutOff);
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

/** Opens the store, starts job dispatch over MQTT, then serves the HTTP API. */
export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const logger = config.logger ?? (await createLogger(config.logLevel ?? 'info', config.logFormat ?? 'json'));
  const metrics = new Metrics(() => store.totals());
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
      logger,
      metrics,
    });
    closers.unshift(() => dispatch.close());
    const app = await buildApp({ store, jobs, logger, metrics, metricsToken: config.metricsToken });
    closers.unshift(() => closeHttp(app));
    const mqtt =
      dispatch.port === undefined
        ? `MQTT broker ${withoutPassword(config.mqttUrl)}`
        : `MQTT broker on port ${dispatch.port}`;
    await app.listen({
      host: config.host,
      port: config.port,
      listenTextResolver: (address) => `fleetjobs listening on ${address}, ${mqtt}`,
    });
    const address = app.server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${host}:${address.port}`;
    // A plain line on stderr, not a JSON log record: it is meant for the person who just ran `npm start`.
    if ((await store.countUsers()) === 0) process.stderr.write(`${CREATE_USER_HINT}\n`);
    return { url, mqttPort: dispatch.port, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}
