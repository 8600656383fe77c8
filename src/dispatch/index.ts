import { hostname } from 'node:os';
import type { JobService } from '../jobs/service.js';
import type { Millis } from '../model/job.js';
import type { DispatchStore, ServiceNode } from '../store/store.js';
import { type BrokerTls, startEmbeddedBroker } from './broker.js';
import { CLAIM_TTL_MS, Dispatcher, type DispatchMetrics, type Logger, type Transport } from './dispatcher.js';
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
  /** This node's name (CONTRACT §8: `--node-id`); default: the host name and process id. */
  nodeId?: string | undefined;
  logger: Logger;
  metrics?: DispatchMetrics;
  /** The clock of every time dispatch stores (default: the system clock). */
  now?: () => Millis;
}

/** A node's default name: its host name and process id. */
export const defaultNodeId = (): string => `${hostname()}-${process.pid}`;

export interface Dispatch {
  /** The embedded broker's port. */
  port?: number;
  /** The embedded broker's MQTT-over-TLS port. */
  tlsPort?: number;
  /** Why this node cannot serve now (its store or broker unreachable), or null when it can. */
  unready(): Promise<string | null>;
  close(): Promise<void>;
}

/** Whether the node is known dead: on this host, its process is gone. */
function knownDead(node: ServiceNode): boolean {
  if (node.host !== hostname()) return false;
  try {
    process.kill(node.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * The embedded broker serves the one node it runs in: it refuses to start beside other live nodes
 * on the store, as an external-broker node refuses to start beside an embedded-broker one.
 */
async function checkBrokerAlone(store: DispatchStore, node: ServiceNode, now: Millis): Promise<void> {
  const others = (await store.liveNodes(now - CLAIM_TTL_MS, node.id)).filter((other) => !knownDead(other));
  const clash = node.broker === 'embedded' ? others : others.filter((other) => other.broker === 'embedded');
  if (clash.length === 0) return;
  const names = clash.map((other) => other.id).join(', ');
  throw new Error(
    node.broker === 'embedded'
      ? `other fleetjobs nodes run on this database (${names}): the embedded MQTT broker serves a single node; run every node with --mqtt-url on one external broker (see README, "Several nodes")`
      : `a fleetjobs node with the embedded MQTT broker runs on this database (${names}): stop it, or run every node with --mqtt-url (see README, "Several nodes")`,
  );
}

/** Runs jobs on devices over MQTT (CONTRACT §7), on the embedded broker or an external one. */
export async function startDispatch(options: DispatchOptions): Promise<Dispatch> {
  const { store, logger } = options;
  const now = options.now ?? Date.now;
  const node: ServiceNode = {
    id: options.nodeId ?? defaultNodeId(),
    broker: options.mqttUrl ? 'external' : 'embedded',
    host: hostname(),
    pid: process.pid,
  };
  await checkBrokerAlone(store, node, now());
  const dispatcher = new Dispatcher({
    store,
    jobs: options.jobs,
    logger,
    node,
    now,
    ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
  });
  let transport: Transport;
  let port: number | undefined;
  let tlsPort: number | undefined;
  if (options.mqttUrl) {
    // Other nodes may hold device connections: what is stored of presence stays.
    transport = await connectExternalBroker({
      url: options.mqttUrl,
      nodeId: node.id,
      dispatcher,
      logger,
    });
  } else {
    // The only broker starts without connections: presence starts empty, before any device announces itself.
    await store.disconnectAll(now());
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
    async unready() {
      try {
        await store.ping();
      } catch (error) {
        return `the store is unreachable: ${error instanceof Error ? error.message : String(error)}`;
      }
      return transport.unreachable();
    },
    async close() {
      // what devices report meanwhile goes to the other nodes, not to one that no longer stores it
      await transport.stopReceiving();
      await dispatcher.close();
      await transport.close();
    },
  };
}
