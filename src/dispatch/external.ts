import mqtt from 'mqtt';
import type { Dispatcher, Logger, Transport } from './dispatcher.js';
import { CONTROL_TOPIC, loginCommands } from './dynamic-security.js';
import { PRESENCE_FILTER, parseDeviceTopic, SERVICE_SUBSCRIPTIONS, SHARE_GROUP } from './topics.js';

/** The MQTT client id of a node (CONTRACT §8). */
export const nodeClientId = (nodeId: string): string => `fleetjobs-${nodeId}`;

/** Device logins changed per message to the broker's dynamic-security plugin. */
const LOGINS_PER_MESSAGE = 100;
/** Device messages a node acknowledges before they are stored, at most (beyond, it waits for the store). */
const BACKLOG = 1_000;

/** How long a stopping node waits for the broker to confirm it stopped taking device messages. */
const UNSUBSCRIBE_WAIT_MS = 2_000;

/** Subscription identifiers (MQTT 5): which of the service's subscriptions a message came through. */
const SHARED = 1;
const PRESENCE_REPLAY = 2;

/**
 * The service as a client of an external broker (credentials in the URL), one client per node:
 * client id `fleetjobs-<node id>`, never shared, so nodes never take over each other's sessions.
 * The session is clean: a broker hands a shared subscription's messages to an absent persistent
 * session too, where they would wait for a node that may never return. Device messages come
 * through shared subscriptions (`$share/fleetjobs/…`), so each is handled by one node. The client
 * takes one message at a time, so waiting for each presence or status message to be stored would
 * store them one by one (presence: ~13 devices a second for three loaded nodes) and hold back the
 * broker's acknowledgements of the node's requests behind them (each device sends its state and
 * presence as it connects). Device messages are acknowledged once queued, while fewer than BACKLOG
 * wait, and stored in batches. If the node dies holding some: the node that buries it reads the
 * broker's retained presence again (`replayPresence`) and sends the in-progress requests again,
 * and a device answers a repeated request with its result (CONTRACT §7); a state it held is lost
 * until the device reports again (as are the messages the broker had in flight to it). Device
 * logins follow the store's through the broker's dynamic-security plugin. Retained presence, which
 * no shared subscription replays, comes through a plain one: only its replays (at each
 * subscription) are taken, and they tell who is online.
 */
export async function connectExternalBroker(options: {
  url: string;
  nodeId: string;
  dispatcher: Dispatcher;
  logger: Logger;
}): Promise<Transport> {
  const { dispatcher, logger } = options;
  const url = new URL(options.url);
  url.search = '';
  const client = mqtt.connect(url.toString(), {
    clientId: nodeClientId(options.nodeId),
    clean: true,
    protocolVersion: 5,
    reconnectPeriod: 1_000,
    resubscribe: false,
  });
  client.handleMessage = (packet, done) => {
    // A message from the broker shows the connection alive. mqtt.js reads the broker's PINGRESP
    // only after the messages before it are handled, one at a time: while a node stored thousands
    // of devices' presence, its ping went unanswered for 90 s, it reconnected and wiped presence
    // (forgetPresence), and the broker's retained presence then replayed into the same wait.
    client.reschedulePing(true);
    const topic = parseDeviceTopic(packet.topic);
    if (!topic) {
      logger.warn({ topic: packet.topic }, 'mqtt message on an unknown topic ignored');
      return done();
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    const through = [packet.properties?.subscriptionIdentifier ?? SHARED].flat();
    const received = through.includes(SHARED)
      ? dispatcher.receive(topic, payload)
      : // a live copy of what the shared subscription delivers to one node: only replays count
        packet.retain && topic.kind === 'presence'
        ? dispatcher.receive(topic, payload, { replay: true })
        : Promise.resolve();
    if (dispatcher.backlog() <= BACKLOG) {
      received.catch((error: unknown) =>
        logger.error({ err: error, topic: packet.topic }, 'device message not stored'),
      );
      return done();
    }
    received.then(
      () => done(),
      (error: unknown) => {
        logger.error({ err: error, topic: packet.topic }, 'device message not stored');
        done();
      },
    );
  };
  // Subscribing again replays the retained presence (MQTT 5 retain handling 0: at every subscribe).
  const subscribePresence = () =>
    client.subscribe(
      PRESENCE_FILTER,
      { qos: 1, properties: { subscriptionIdentifier: PRESENCE_REPLAY } },
      (error) => {
        if (error) logger.error({ err: error }, 'subscribing to retained presence failed');
      },
    );
  let connections = 0;
  client.on('connect', () => {
    logger.info({ broker: url.host }, 'connected to the external mqtt broker');
    const subscribe = () => {
      client.subscribe(
        SERVICE_SUBSCRIPTIONS.map((filter) => `$share/${SHARE_GROUP}/${filter}`),
        { qos: 1, properties: { subscriptionIdentifier: SHARED } },
        (error) => {
          if (error) logger.error({ err: error }, 'subscribing to device topics failed');
        },
      );
      subscribePresence();
    };
    // Back after losing the broker: if it restarted, it lost its connections without Wills. The
    // presence known so far is void, and its retained presence (re)tells who is online; requests
    // of devices found online are sent again, with answers that may have been lost meanwhile.
    if (connections++ > 0) {
      logger.warn({ broker: url.host }, 'back on the external mqtt broker: presence starts over');
      dispatcher.forgetPresence().then(subscribe, (error: unknown) => {
        logger.error({ err: error }, 'resetting presence failed');
        subscribe();
      });
    } else {
      subscribe();
    }
  });
  client.on('error', (error) => logger.error({ err: error }, 'external mqtt broker error'));
  client.on('offline', () => logger.warn({ broker: url.host }, 'external mqtt broker unreachable, retrying'));
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve());
    client.once('error', reject);
  });

  return {
    // The broker's PUBACK is the only acknowledgement a client sees.
    publish: async (topic, payload) => {
      await client.publishAsync(topic, payload, { qos: 1 });
      return { acknowledged: Promise.resolve() };
    },
    // Mosquitto's dynamic-security plugin (as `fleetjobs broker-config` sets it up) changes the
    // login live and closes a session opened with the old token; a broker without it ignores this.
    changeLogins(changes) {
      for (let start = 0; start < changes.length; start += LOGINS_PER_MESSAGE) {
        const batch = changes.slice(start, start + LOGINS_PER_MESSAGE);
        const commands = batch.flatMap(({ id, token }) => loginCommands(id, token));
        client.publish(CONTROL_TOPIC, JSON.stringify({ commands }), { qos: 1 }, (error) => {
          if (error)
            logger.error(
              { err: error, devices: batch.length },
              'changing device logins on the broker failed',
            );
        });
      }
    },
    replayPresence: () => {
      if (client.connected) subscribePresence();
    },
    unreachable: () => (client.connected ? null : `the MQTT broker ${url.host} is unreachable`),
    // The broker's UNSUBACK comes after every message it sent before, which the client takes in order.
    async stopReceiving() {
      if (!client.connected) return;
      const filters = SERVICE_SUBSCRIPTIONS.map((filter) => `$share/${SHARE_GROUP}/${filter}`);
      await Promise.race([
        client.unsubscribeAsync(filters).catch((error: unknown) => {
          logger.warn({ err: error }, 'unsubscribing from device topics failed');
        }),
        // a broker that stopped answering: close anyway
        new Promise((resolve) => setTimeout(resolve, UNSUBSCRIBE_WAIT_MS).unref()),
      ]);
    },
    async close() {
      // Not waiting for acknowledgements, which a broker that just went down never sends: what
      // they were for is stored, and unanswered requests are sent again on `online`.
      await client.endAsync(true);
    },
  };
}
