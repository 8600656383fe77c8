import type { JobService } from '../jobs/service.js';
import type { Millis } from '../model/job.js';
import type { DispatchStore } from '../store/store.js';
import { type BrokerTls, startEmbeddedBroker } from './broker.js';
import { Dispatcher, type DispatchMetrics, type Logger, type Transport } from './dispatcher.js';
import { connectExternalBroker } from './external.js';

export type { Logger } from './dispatcher.js';

export interface DispatchOptions {
  store: DispatchStore;
  /** The job service: its 'job-created', 'jobs-canceled', 'device-removed', 'device-token-changed' events. */
  jobs: JobService;
  mqttHost: string;
  /** The embedded broker's port; 0 picks a free one (reported as `port`). */
  mqttPort: number;
  /** When set, no broker is embedded: the service joins this one as a client. */
  mqttUrl?: string | undefined;
  /** MQTT over TLS on the embedded broker, besides plain MQTT. */
  mqttTls?: BrokerTls | undefined;
  logger: Logger;
  metrics?: DispatchMetrics;
  /** The clock of every time dispatch stores (default: the system clock). */
  now?: () => Millis;
}

export interface Dispatch {
  /** The embedded broker's port. */
  port?: number;
  /** The embedded broker's MQTT-over-TLS port. */
  tlsPort?: number;
  close(): Promise<void>;
}

/** Runs jobs on devices over MQTT (CONTRACT §7), on the embedded broker or an external one. */
export async function startDispatch(options: DispatchOptions): Promise<Dispatch> {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  const dispatcher = new Dispatcher({
    store,
    jobs: options.jobs,
    logger,
    now,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  // Before any device can announce itself: presence starts empty, on either broker.
  await store.disconnectAll(now());
  let transport: Transport;
  let port: number | undefined;
  let tlsPort: number | undefined;
  if (options.mqttUrl) {
    transport = await connectExternalBroker({ url: options.mqttUrl, dispatcher, logger });
  } else {
    const broker = await startEmbeddedBroker({
      store,
      dispatcher,
      host: options.mqttHost,
      port: options.mqttPort,
      tls: options.mqttTls,
      logger,
    });
    transport = broker;
    port = broker.port;
    tlsPort = broker.tlsPort;
  }
  await dispatcher.start(transport);
  return {
    ...(port === undefined ? {} : { port }),
    ...(tlsPort === undefined ? {} : { tlsPort }),
    async close() {
      await dispatcher.close();
      await transport.close();
    },
  };
}
