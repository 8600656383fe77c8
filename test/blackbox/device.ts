// A small device built only from CONTRACT §7 (MQTT 3.1.1), plus HTTP helpers for the §5/§7 black-box
// tests. It reads nothing from src/.
import { connect as netConnect, type Socket } from 'node:net';
import mqtt, { type MqttClient } from 'mqtt';
import { expect } from 'vitest';
import type { Server } from './harness.js';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies are whatever the server sent
export type Json = any;

export interface DeviceMessage {
  kind: 'request' | 'cancel' | 'other';
  topic: string;
  jobId: string;
  raw: string;
  body: Json;
  qos: number;
}

/** Polls `probe` until it returns a value other than undefined; throws with `what` after the deadline. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export function presenceTopic(id: string): string {
  return `fleetjobs/${id}/presence`;
}

export interface ConnectOptions {
  /** publish `online` after subscribing (default true) */
  announce?: boolean;
  keepalive?: number;
  clientId?: string;
  username?: string;
}

/** An MQTT device as §7 describes it. */
export class Device {
  readonly messages: DeviceMessage[] = [];
  closed = false;

  private constructor(
    readonly id: string,
    readonly client: MqttClient,
  ) {
    client.on('message', (topic, payload, packet) => {
      const raw = payload.toString('utf8');
      const m = /^fleetjobs\/[^/]+\/jobs\/([^/]+)\/(request|cancel)$/.exec(topic);
      let body: Json;
      try {
        body = JSON.parse(raw);
      } catch {
        body = undefined;
      }
      this.messages.push({
        kind: m ? (m[2] as 'request' | 'cancel') : 'other',
        topic,
        jobId: m?.[1] ?? '',
        raw,
        body,
        qos: packet.qos,
      });
    });
    client.on('close', () => {
      this.closed = true;
    });
    client.on('error', () => {
      // refused publishes or subscriptions may end the connection; the tests look at effects
    });
  }

  /** Connects (Will `offline` QoS 1 retained), subscribes to requests and cancels, announces `online`. */
  static async connect(
    mqttPort: number,
    id: string,
    token: string,
    opts: ConnectOptions = {},
  ): Promise<Device> {
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${mqttPort}`, {
      clientId: opts.clientId ?? id,
      username: opts.username ?? id,
      password: token,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: 5000,
      keepalive: opts.keepalive ?? 30,
      will: { topic: presenceTopic(id), payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    const device = new Device(id, client);
    const granted = await client.subscribeAsync(
      [`fleetjobs/${id}/jobs/+/request`, `fleetjobs/${id}/jobs/+/cancel`],
      { qos: 1 },
    );
    for (const g of granted) expect(g.qos, `subscription ${g.topic}`).not.toBe(128);
    if (opts.announce ?? true) await device.online();
    return device;
  }

  online(): Promise<unknown> {
    return this.client.publishAsync(presenceTopic(this.id), 'online', { qos: 1, retain: true });
  }

  /** Clean disconnect: `offline` (retained), then DISCONNECT. */
  async offline(): Promise<void> {
    await this.client.publishAsync(presenceTopic(this.id), 'offline', { qos: 1, retain: true });
    await this.client.endAsync();
  }

  /** The connection dies: the socket is destroyed without DISCONNECT (the broker publishes the Will). */
  async kill(): Promise<void> {
    this.client.stream.destroy();
    await this.client.endAsync(true);
  }

  /** Runs a publish/subscribe that the broker may refuse: resolves when it completes or the connection closes. */
  attempt(op: () => Promise<unknown>): Promise<'done' | 'closed'> {
    if (this.closed) return Promise.resolve('closed');
    return new Promise((resolve) => {
      const onClose = () => resolve('closed');
      this.client.once('close', onClose);
      op().then(
        () => {
          this.client.off('close', onClose);
          resolve('done');
        },
        () => {
          this.client.off('close', onClose);
          resolve(this.closed ? 'closed' : 'done');
        },
      );
    });
  }

  async end(): Promise<void> {
    await this.client.endAsync(true);
  }

  status(jobId: number | string, body: object | string): Promise<unknown> {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    return this.client.publishAsync(`fleetjobs/${this.id}/jobs/${jobId}/status`, payload, { qos: 1 });
  }

  state(body: object | string): Promise<unknown> {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    return this.client.publishAsync(`fleetjobs/${this.id}/state`, payload, { qos: 1 });
  }

  received(kind: 'request' | 'cancel', jobId: number | string): DeviceMessage[] {
    return this.messages.filter((m) => m.kind === kind && m.jobId === String(jobId));
  }

  /** Waits until at least `n` messages of this kind arrived for the job; returns the n-th. */
  waitFor(
    kind: 'request' | 'cancel',
    jobId: number | string,
    n = 1,
    timeoutMs = 10_000,
  ): Promise<DeviceMessage> {
    return until(
      `${this.id}: ${kind} #${n} for job ${jobId}`,
      () => this.received(kind, jobId)[n - 1],
      timeoutMs,
    );
  }
}

// --- a raw MQTT 3.1.1 connection, for a client that goes silent (keep-alive expiry) -------------

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return Buffer.from(out);
}
function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}
function packet(first: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([first]), varint(body.length), body]);
}

/**
 * Connects with a hand-written CONNECT (keep-alive `keepalive` s, Will `offline` QoS 1 retained),
 * publishes `online` retained, then sends nothing more: no PINGREQ, no DISCONNECT. Resolves once
 * the CONNACK was accepted; the socket stays open until the broker closes it.
 */
export async function silentDevice(
  mqttPort: number,
  id: string,
  token: string,
  keepalive: number,
): Promise<Socket> {
  const sock = netConnect(mqttPort, '127.0.0.1');
  sock.on('error', () => {});
  const variable = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, 0x80 | 0x40 | 0x20 | 0x08 | 0x04 | 0x02]),
    Buffer.alloc(2),
  ]);
  variable.writeUInt16BE(keepalive, variable.length - 2);
  const payload = Buffer.concat([str(id), str(presenceTopic(id)), str('offline'), str(id), str(token)]);
  const acked = new Promise<void>((resolve, reject) => {
    sock.once('data', (d: Buffer) => {
      if (d[0] === 0x20 && d[3] === 0) resolve();
      else reject(new Error(`CONNACK refused: ${d.toString('hex')}`));
    });
    sock.once('close', () => reject(new Error('closed before CONNACK')));
  });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.write(packet(0x10, Buffer.concat([variable, payload])));
  await acked;
  const pid = Buffer.from([0, 1]);
  sock.write(packet(0x33, Buffer.concat([str(presenceTopic(id)), pid, Buffer.from('online')])));
  return sock;
}

// --- HTTP helpers -------------------------------------------------------------------------------

export interface Provisioned {
  id: string;
  token: string;
}

export async function createDevices(
  server: Server,
  ids: string[],
  extra: object = {},
): Promise<Provisioned[]> {
  const r = await server.post(
    '/ws/v1/devices/inventory',
    ids.map((id) => ({ id, ...extra })),
  );
  expect(r.status, r.text).toBe(201);
  return r.body.list.map((d: Json) => {
    expect(typeof d.device_token).toBe('string');
    return { id: d.id as string, token: d.device_token as string };
  });
}

export async function getDevice(server: Server, id: string): Promise<Json> {
  const r = await server.get(`/ws/v1/devices/inventory/${id}`);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

export async function createJob(server: Server, body: object): Promise<Json> {
  const r = await server.post('/ws/v1/jobs/inventory', body);
  expect(r.status, r.text).toBe(201);
  return r.body;
}

export async function getJob(server: Server, id: number): Promise<Json> {
  const r = await server.get(`/ws/v1/jobs/${id}`);
  expect(r.status, r.text).toBe(200);
  return r.body;
}

export async function getTargets(server: Server, id: number): Promise<Json[]> {
  const r = await server.get(`/ws/v1/jobs/${id}/targets?size=1000`);
  expect(r.status, r.text).toBe(200);
  return r.body.list;
}

/** Job and targets, read back to back, with the §5 invariant checked: counts add up and agree. */
export async function snapshot(server: Server, id: number): Promise<{ job: Json; targets: Json[] }> {
  // the two reads are not one transaction: retry until they describe the same moment
  return until(`a consistent read of job ${id}`, async () => {
    const job = await getJob(server, id);
    const targets = await getTargets(server, id);
    const again = await getJob(server, id);
    if (JSON.stringify(job) !== JSON.stringify(again)) return undefined;
    expectCountsAgree(job, targets);
    return { job, targets };
  });
}

export function expectCountsAgree(job: Json, targets: Json[]): void {
  const n = (...s: string[]) => targets.filter((t) => s.includes(t.status)).length;
  expect(job.target_count).toBe(targets.length);
  expect(job.progress_success + job.progress_failures + job.progress_canceled + job.progress_pending).toBe(
    job.target_count,
  );
  expect({
    progress_success: job.progress_success,
    progress_failures: job.progress_failures,
    progress_canceled: job.progress_canceled,
    progress_pending: job.progress_pending,
  }).toEqual({
    progress_success: n('successful'),
    progress_failures: n('failed', 'timed_out'),
    progress_canceled: n('canceled'),
    progress_pending: n('queued', 'in_progress'),
  });
}

export function target(targets: Json[], deviceId: string): Json {
  const t = targets.find((x) => x.device_id === deviceId);
  expect(t, `target ${deviceId}`).toBeDefined();
  return t;
}

/** Polls the job until `accept(job, targets)` holds; checks the count invariant on every read. */
export function waitJob(
  server: Server,
  id: number,
  what: string,
  accept: (job: Json, targets: Json[]) => boolean,
  timeoutMs = 10_000,
): Promise<{ job: Json; targets: Json[] }> {
  return until(
    `job ${id}: ${what}`,
    async () => {
      const s = await snapshot(server, id);
      return accept(s.job, s.targets) ? s : undefined;
    },
    timeoutMs,
  );
}
