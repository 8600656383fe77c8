import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { DEVICE_ID_PATTERN } from '../model/device.js';
import { verifyDeviceToken } from '../security/hashing.js';
import type { DispatchStore } from '../store/store.js';
import type { Dispatcher, Logger, Transport } from './dispatcher.js';
import { PacketLimiter } from './packet-limits.js';
import { maySubscribe, parseDeviceTopic } from './topics.js';

/** How long a verified token is trusted without asking the store again (a change kicks at once). */
const AUTH_CACHE_MS = 60_000;
const AUTH_CACHE_MAX = 100_000;
/** Device ids are 35 characters; aedes' default limit is 23. */
const MAX_CLIENT_ID_LENGTH = 64;

const BAD_CREDENTIALS = 4;
const NOT_AUTHORIZED = 5;

const authError = (message: string, returnCode: number): AuthenticateError =>
  Object.assign(new Error(message), { returnCode }) as AuthenticateError;

const digest = (password: Buffer): string => createHash('sha256').update(password).digest('base64');

interface CachedAuth {
  digest: string;
  expires: number;
}

export interface EmbeddedBroker extends Transport {
  readonly port: number;
  /** The MQTT-over-TLS port, when the broker has a certificate. */
  readonly tlsPort?: number;
}

/** A certificate and key (PEM) for MQTT over TLS, and the port to take it on (0 picks a free one). */
export interface BrokerTls {
  cert: Buffer;
  key: Buffer;
  port: number;
}

async function listen(server: Server, port: number, host: string): Promise<number> {
  server.listen(port, host);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/**
 * The embedded broker: devices log in with their id and token, may only use their own topics, and
 * every message they publish reaches the dispatcher from the authorization hook, so a QoS 1 status
 * is acknowledged to the device only once it is stored.
 */
export async function startEmbeddedBroker(options: {
  store: DispatchStore;
  dispatcher: Dispatcher;
  host: string;
  port: number;
  tls?: BrokerTls | undefined;
  logger: Logger;
}): Promise<EmbeddedBroker> {
  const { store, dispatcher, logger } = options;
  const verified = new Map<string, CachedAuth>();
  /** Bumped when a device's token changes or it is removed, so a check in flight is not cached. */
  const generations = new Map<string, number>();
  /** The live connection of each device, by stored (upper-case) id. */
  const sessions = new Map<string, Client>();
  /**
   * Per connection, what each QoS 1 message forwarded to it and not yet acknowledged releases, in
   * the order sent (a client acknowledges in that order; only how many are open matters).
   */
  const unacknowledged = new Map<Client, (() => void)[]>();
  /** Connections that subscribed at QoS 0, which acknowledge nothing. */
  const acknowledgeNothing = new WeakSet<Client>();
  /** Per topic, the service's publishes not yet forwarded to a connection. */
  const unforwarded = new Map<string, { forwarded: boolean; acknowledged: () => void }[]>();

  async function checkToken(deviceId: string, password: Buffer): Promise<boolean> {
    const cached = verified.get(deviceId);
    const passwordDigest = digest(password);
    if (cached && cached.expires > Date.now() && cached.digest === passwordDigest) return true;
    const generation = generations.get(deviceId) ?? 0;
    const credentials = await store.findDeviceCredentials(deviceId);
    if (!credentials || !verifyDeviceToken(password.toString('utf8'), credentials.token_hash)) return false;
    if ((generations.get(deviceId) ?? 0) !== generation) return checkToken(deviceId, password);
    if (verified.size >= AUTH_CACHE_MAX) verified.clear();
    verified.set(deviceId, { digest: passwordDigest, expires: Date.now() + AUTH_CACHE_MS });
    return true;
  }

  const deviceOf = (client: Client): string => client.id.toUpperCase();

  const broker = await Aedes.createBroker({
    maxClientsIdLength: MAX_CLIENT_ID_LENGTH,
    authenticate(client, username, password, done) {
      if (username === undefined || password === undefined || !DEVICE_ID_PATTERN.test(username)) {
        logger.warn({ client: client.id }, 'mqtt login refused: not a device id');
        return done(authError('bad username or password', BAD_CREDENTIALS), false);
      }
      if (client.id !== username) {
        logger.warn({ client: client.id }, 'mqtt login refused: client id is not the username');
        return done(authError('client id must be the device id', NOT_AUTHORIZED), false);
      }
      checkToken(username.toUpperCase(), password).then(
        (ok) => {
          if (ok) {
            if (client.conn instanceof PacketLimiter) client.conn.loggedIn();
            return done(null, true);
          }
          logger.warn({ device: username }, 'mqtt login refused: wrong token or unknown device');
          done(authError('bad username or password', BAD_CREDENTIALS), false);
        },
        (error: unknown) => {
          logger.error({ err: error }, 'mqtt login check failed');
          done(authError('server unavailable', 3), false);
        },
      );
    },
    authorizeSubscribe(client, subscription, done) {
      if (maySubscribe(deviceOf(client), subscription.topic)) {
        if (subscription.qos === 0) acknowledgeNothing.add(client);
        return done(null, subscription);
      }
      logger.warn({ device: client.id, topic: subscription.topic }, 'mqtt subscription refused');
      // null: SUBACK reports the failure (0x80) and the connection stays up
      done(null, null);
    },
    // Counts what each connection has to acknowledge, and which of those are the service's publishes.
    authorizeForward(client, packet) {
      if (packet.qos > 0 && !acknowledgeNothing.has(client)) {
        const publish = unforwarded.get(packet.topic)?.find((waiting) => !waiting.forwarded);
        if (publish) publish.forwarded = true;
        const open = unacknowledged.get(client) ?? [];
        open.push(publish?.acknowledged ?? (() => undefined));
        unacknowledged.set(client, open);
      }
      return packet;
    },
    authorizePublish(client, packet, done) {
      const topic = parseDeviceTopic(packet.topic);
      if (!client || !topic || topic.deviceId !== deviceOf(client)) {
        logger.warn({ device: client?.id, topic: packet.topic }, 'mqtt publish refused');
        return done(new Error('publish refused'));
      }
      // Nothing a device publishes is kept: its state and statuses are stored by the service, and
      // every subscription would scan all retained messages (aedes' memory store). Only the device
      // itself could read its retained presence back, and the service already knows it.
      packet.retain = false;
      if (topic.kind === 'presence') {
        // A Will from a connection that another one with the same id replaced says nothing.
        const current = sessions.get(topic.deviceId);
        if (current !== undefined && current !== client) return done(null);
      }
      dispatcher.receive(topic, packet.payload as Buffer).then(
        () => done(null),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    },
  });

  broker.on('ack', (_packet, client) => {
    const open = unacknowledged.get(client);
    open?.shift()?.();
    if (open?.length === 0) unacknowledged.delete(client);
  });

  broker.on('clientReady', (client) => {
    sessions.set(deviceOf(client), client);
  });
  broker.on('clientDisconnect', (client) => {
    for (const acknowledged of unacknowledged.get(client) ?? []) acknowledged();
    unacknowledged.delete(client);
    const deviceId = deviceOf(client);
    if (sessions.get(deviceId) !== client) return;
    sessions.delete(deviceId);
    void dispatcher.presence(deviceId, false).catch(() => undefined);
  });
  broker.on('clientError', (client, error) => {
    logger.debug({ device: client.id, err: error }, 'mqtt client error');
  });

  /** Every connection, plain or TLS, goes through here. */
  const handleConnection = (socket: Socket) => broker.handle(new PacketLimiter(socket));
  const servers: Server[] = [createServer(handleConnection)];
  const port = await listen(servers[0] as Server, options.port, options.host);
  logger.info({ host: options.host, port }, 'embedded mqtt broker listening');
  let tlsPort: number | undefined;
  if (options.tls !== undefined) {
    const { cert, key } = options.tls;
    const tlsServer = createTlsServer({ cert, key }, handleConnection);
    tlsServer.on('tlsClientError', (error) => logger.debug({ err: error }, 'mqtts handshake failed'));
    servers.push(tlsServer);
    tlsPort = await listen(tlsServer, options.tls.port, options.host);
    logger.info({ host: options.host, port: tlsPort }, 'embedded mqtt broker listening for TLS');
  }

  return {
    port,
    ...(tlsPort === undefined ? {} : { tlsPort }),
    /** Resolves once the message is written to the device's connection; acknowledged by its PUBACK. */
    publish: (topic, payload) =>
      new Promise((resolve, reject) => {
        let acknowledge: () => void = () => undefined;
        const acknowledged = new Promise<void>((settle) => {
          acknowledge = settle;
        });
        const waiting = { forwarded: false, acknowledged: acknowledge };
        const queue = unforwarded.get(topic) ?? [];
        queue.push(waiting);
        unforwarded.set(topic, queue);
        broker.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (error) => {
          queue.splice(queue.indexOf(waiting), 1);
          if (queue.length === 0 && unforwarded.get(topic) === queue) unforwarded.delete(topic);
          // delivered to no connection (the device is not subscribed): nothing to wait for
          if (!waiting.forwarded) acknowledge();
          if (error) reject(error);
          else resolve({ acknowledged });
        });
      }),
    unreachable: () => null,
    // the only node: its devices' messages are stored as they come until it closes
    async stopReceiving() {},
    // the only node: no other node's presence to recover (each start resets presence)
    replayPresence() {},
    // the broker asks the store at each login: only a session opened with an old token must end
    changeLogins(changes) {
      for (const { id } of changes) {
        generations.set(id, (generations.get(id) ?? 0) + 1);
        verified.delete(id);
        sessions.get(id)?.close();
      }
    },
    async close() {
      const closed = Promise.all(
        servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await closed;
    },
  };
}
