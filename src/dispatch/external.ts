import mqtt from 'mqtt';
import type { Dispatcher, Logger, Transport } from './dispatcher.js';
import { parseDeviceTopic, SERVICE_SUBSCRIPTIONS } from './topics.js';

const DEFAULT_CLIENT_ID = 'fleetjobs-service';

/**
 * The service as a client of an external broker (credentials and an optional `clientId` query
 * parameter in the URL). Its session is persistent and a message is acknowledged only once the
 * dispatcher stored it, so statuses published while the service is down are delivered when it
 * returns; each (re)subscription replays the retained presence, which tells who is online.
 */
export async function connectExternalBroker(options: {
  url: string;
  dispatcher: Dispatcher;
  logger: Logger;
}): Promise<Transport> {
  const { dispatcher, logger } = options;
  const url = new URL(options.url);
  const clientId = url.searchParams.get('clientId') ?? DEFAULT_CLIENT_ID;
  url.search = '';
  const client = mqtt.connect(url.toString(), {
    clientId,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 1_000,
    resubscribe: false,
  });
  client.handleMessage = (packet, done) => {
    const topic = parseDeviceTopic(packet.topic);
    if (!topic) {
      logger.warn({ topic: packet.topic }, 'mqtt message on an unknown topic ignored');
      return done();
    }
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload;
    dispatcher.receive(topic, payload).then(
      () => done(),
      (error: unknown) => {
        logger.error({ err: error, topic: packet.topic }, 'device message not stored');
        done();
      },
    );
  };
  let connections = 0;
  client.on('connect', (connack) => {
    logger.info({ broker: url.host }, 'connected to the external mqtt broker');
    const subscribe = () =>
      client.subscribe(SERVICE_SUBSCRIPTIONS, { qos: 1 }, (error) => {
        if (error) logger.error({ err: error }, 'subscribing to device topics failed');
      });
    // A broker that lost our session (it restarted) lost its connections too, without Wills: the
    // presence known so far is void, and its retained presence (re)tells who is online.
    if (connections++ > 0 && !connack.sessionPresent) {
      logger.warn({ broker: url.host }, 'the external mqtt broker lost its sessions: presence starts over');
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
    kick(deviceId) {
      logger.info(
        { device: deviceId },
        'an external broker keeps its connections: the device is not disconnected',
      );
    },
    async close() {
      // Not waiting for acknowledgements, which a broker that just went down never sends: what
      // they were for is stored, and unanswered requests are sent again on `online`.
      await client.endAsync(true);
    },
  };
}
