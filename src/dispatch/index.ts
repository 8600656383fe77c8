import type { JobService } from '../jobs/service.js';
import type { Millis } from '../model/job.js';
import type { DispatchStore } from '../store/store.js';
import { startEmbeddedBroker } from './broker.js';
import { Dispatcher, type Logger, type Transport } from './dispatcher.js';
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
  logger: Logger;
  /** The clock of every time dispatch stores (default: the system clock). */
  now?: () => Millis;
}

export interface Dispatch {
  /** The embedded broker's port. */
  port?: number;
  close(): Promise<void>;
}

/** Runs jobs on devices over MQTT (CONTRACT §7), on the embedded broker or an external one. */
export async function startDispatch(options: DispatchOptions): Promise<Dispatch> {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  const dispatcher = new Dispatcher({ store, jobs: options.jobs, logger, now });
  // Before any device can announce itself: presence starts empty, on either broker.
  await store.disconnectAll(now());
  let transport: Transport;
  let port: number | undefined;
  if (options.mqttUrl) {
    transport = await connectExternalBroker({ url: options.mqttUrl, dispatcher, logger });
  } else {
    const broker = await startEmbeddedBroker({
      store,
      dispatcher,
      host: options.mqttHost,
      port: options.mqttPort,
      logger,
    });
    transport = broker;
    port = broker.port;
  }
  await dispatcher.start(transport);
  return {
    ...(port === undefined ? {} : { port }),
    async close() {
      await dispatcher.close();
      await transport.close();
    },
  };
}
