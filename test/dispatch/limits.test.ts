import { connect as connectTcp, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, type Service, startService, TestDevice, targetsOf } from './harness.js';

let service: Service;
const devices: TestDevice[] = [];
const sockets: Socket[] = [];

const connect = async (id: string, token: string) => {
  const device = await TestDevice.connect(service.mqttUrl, id, token);
  devices.push(device);
  return device;
};

const oneDevice = async () => {
  const [d] = await service.addDevices(1);
  if (!d) throw new Error('no device');
  return d;
};

/** A raw TCP connection to the embedded broker, resolving once it is open. */
const rawSocket = async (): Promise<Socket> => {
  const port = Number(new URL(service.mqttUrl).port);
  const socket = connectTcp(port, '127.0.0.1');
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
};

/** MQTT's variable-length remaining length. */
const remainingLength = (length: number): Buffer => {
  const bytes: number[] = [];
  let left = length;
  do {
    let byte = left % 128;
    left = Math.floor(left / 128);
    if (left > 0) byte |= 0x80;
    bytes.push(byte);
  } while (left > 0);
  return Buffer.from(bytes);
};

beforeEach(async () => {
  service = await startService();
});

afterEach(async () => {
  for (const device of devices.splice(0)) device.client.end(true);
  for (const socket of sockets.splice(0)) socket.destroy();
  await service.stop();
});

describe('embedded broker memory bounds', () => {
  it('closes a connection at once when it announces a CONNECT over 64 KiB, before reading it', async () => {
    const socket = await rawSocket();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    // a CONNECT announcing 200 MiB, of which only the first KiB is ever sent
    socket.write(
      Buffer.concat([Buffer.from([0x10]), remainingLength(200 * 1024 * 1024), Buffer.alloc(1024)]),
    );
    await closed;
    const small = await rawSocket();
    const closedToo = new Promise<void>((resolve) => small.once('close', () => resolve()));
    small.write(Buffer.concat([Buffer.from([0x10]), remainingLength(64 * 1024 + 1)]));
    await closedToo;
  });

  it('closes a logged-in device that sends a packet over 1 MiB; smaller ones pass', async () => {
    const d = await oneDevice();
    const device = await connect(d.id, d.token);
    const state = (bytes: number) => JSON.stringify({ firmware_version: 'x'.repeat(bytes) });
    // well over the 64 KiB of a connection not logged in, under the 1 MiB of a device
    await device.client.publishAsync(`fleetjobs/${d.id}/state`, state(900 * 1024), { qos: 1 });
    expect(device.client.connected).toBe(true);
    const closed = device.closed();
    void device.client
      .publishAsync(`fleetjobs/${d.id}/state`, state(1024 * 1024), { qos: 1 })
      .catch(() => undefined);
    await closed;
  });
});

describe('retained messages', () => {
  it('are not kept on state and status topics', async () => {
    const d = await oneDevice();
    const device = await connect(d.id, d.token);
    const stateTopic = `fleetjobs/${d.id}/state`;
    const statusTopic = `fleetjobs/${d.id}/jobs/1/status`;
    await device.client.publishAsync(stateTopic, JSON.stringify({ ip: '10.0.0.1' }), {
      qos: 1,
      retain: true,
    });
    await device.client.publishAsync(statusTopic, JSON.stringify({ status: 'successful' }), {
      qos: 1,
      retain: true,
    });
    // A message replayed because it was retained carries the retain flag; the device's own live
    // publishes (it may read its topics) can still be on their way and do not.
    const seen: string[] = [];
    device.client.on('message', (topic, payload, packet) => {
      if (packet.retain) seen.push(`${topic} ${payload.toString()}`);
    });
    await device.client.subscribeAsync([stateTopic, `fleetjobs/${d.id}/jobs/+/status`], { qos: 1 });
    // a retained message would arrive on subscribing, before this one
    const marker = new Promise<void>((resolve) =>
      device.client.on('message', (topic) => topic === stateTopic && resolve()),
    );
    await device.client.publishAsync(stateTopic, JSON.stringify({ ip: '10.0.0.2' }), { qos: 1 });
    await marker;
    expect(seen).toEqual([]);
  });
});

describe('flow control', () => {
  it('at most 10 requests await a device acknowledgement; a target waiting behind them starts when it is sent', async () => {
    let clock = Date.now();
    await service.stop();
    service = await startService({ now: () => clock });
    const d = await oneDevice();
    const device = await connect(d.id, d.token);
    // The device holds back its acknowledgements (and so reads no further message until it sends one).
    const held: (() => void)[] = [];
    device.client.handleMessage = (_packet, done) => {
      held.push(() => done());
    };
    const start = clock;
    const jobIds: number[] = [];
    for (let i = 0; i < 15; i++)
      jobIds.push(await service.createJob({ targets: { devices: [d.id] }, timeout: 600 }));
    const targets = async () =>
      Promise.all(jobIds.map(async (jobId) => (await targetsOf(service, jobId)).get(d.id)));
    const inProgress = async () => (await targets()).filter((target) => target?.status === 'in_progress');
    await eventually(async () => (await inProgress()).length >= 10, '10 requests sent');
    // a moment for more to be sent, if any were going to be
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await inProgress()).length).toBe(10);

    clock += 100_000;
    await eventually(() => {
      held.shift()?.();
      return device.received.filter((message) => message.kind === 'request').length === 15;
    }, 'every request received');
    for (const acknowledge of held.splice(0)) acknowledge();
    const startTimes = (await targets()).map((target) => target?.start_time);
    expect(startTimes.filter((time) => time === start)).toHaveLength(10);
    expect(startTimes.filter((time) => time === start + 100_000)).toHaveLength(5);
  });
});
