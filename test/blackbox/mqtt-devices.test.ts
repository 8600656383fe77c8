// §7 over MQTT: who may connect, per-device topic isolation, presence and `state`.
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDevices,
  createJob,
  Device,
  getDevice,
  type Json,
  presenceTopic,
  silentDevice,
  snapshot,
  target,
  until,
  waitJob,
} from './device.js';
import { type Auth, deviceId, ISO_MS, type Server, startServer } from './harness.js';

let server: Server;
let alice: Auth;

beforeAll(async () => {
  server = await startServer();
  alice = await server.user('mqtt-dev', 'mdalice');
  server.defaultAuth = alice;
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** Whether the broker accepts a 3.1.1 connection with these credentials. */
async function accepts(clientId: string, username: string, password: string): Promise<boolean> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId,
    username,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
  const ok = await new Promise<boolean>((resolve) => {
    client.once('connect', () => resolve(true));
    client.once('error', () => resolve(false));
    client.once('close', () => resolve(false));
  });
  await client.endAsync(true);
  return ok;
}

describe('§7 connecting', () => {
  it('accepts client id = username = device id with its token, and refuses anything else', async () => {
    const [a, b] = await createDevices(server, [deviceId('A1'), deviceId('A1')]);
    if (!a || !b) throw new Error('devices');
    expect(await accepts(a.id, a.id, a.token)).toBe(true);
    expect(await accepts(a.id, a.id, `${a.token}x`)).toBe(false); // wrong token
    expect(await accepts(a.id, a.id, b.token)).toBe(false); // another device's token
    expect(await accepts(b.id, a.id, a.token)).toBe(false); // client id is not the username
    expect(await accepts(`${a.id}-x`, a.id, a.token)).toBe(false);
    expect(await accepts(a.id, b.id, a.token)).toBe(false); // username of another device
    expect(await accepts(deviceId('A1'), deviceId('A1'), a.token)).toBe(false); // unknown device
    // none of these attempts connected anyone
    expect((await getDevice(server, a.id)).connection_status).toBe('disconnected');
    expect((await getDevice(server, b.id)).connection_status).toBe('disconnected');
  });

  it('a replaced token stops working at once; the new one works', async () => {
    const [a] = await createDevices(server, [deviceId('A2')]);
    if (!a) throw new Error('device');
    const r = await server.post(`/ws/v1/devices/inventory/${a.id}/token`, {
      device_token: 'factory-token-0123456789',
    });
    expect(r.status, r.text).toBe(200);
    expect(await accepts(a.id, a.id, a.token)).toBe(false);
    expect(await accepts(a.id, a.id, 'factory-token-0123456789')).toBe(true);
  });
});

describe('§7 a device stays under fleetjobs/<its id>/', () => {
  it("cannot read another device's requests or presence, nor act on its targets, presence or state", async () => {
    const [victim, rogueDev] = await createDevices(server, [deviceId('B1'), deviceId('B1')], {
      firmware_version: '1.0',
    });
    if (!victim || !rogueDev) throw new Error('devices');
    const v = await Device.connect(server.mqttPort, victim.id, victim.token);
    await until('victim connected', async () =>
      (await getDevice(server, victim.id)).connection_status === 'connected' ? true : undefined,
    );

    // a rogue (a valid device) subscribing to everything / to the victim's topics, one filter per
    // connection (a broker may refuse with 0x80 or by closing the connection)
    const filters = ['#', 'fleetjobs/#', `fleetjobs/${victim.id}/#`, `fleetjobs/${victim.id}/jobs/+/request`];
    let job: Json;
    for (const filter of filters) {
      const rogue = await Device.connect(server.mqttPort, rogueDev.id, rogueDev.token);
      await rogue.attempt(() => rogue.client.subscribeAsync([filter], { qos: 1 }));
      job = await createJob(server, {
        job_type: 'send_message',
        description: 'victim job',
        targets: { devices: [victim.id] },
        payload: { secret: filter },
      });
      await v.waitFor('request', job.id);
      if (!rogue.closed) {
        // a barrier: the service publishes the rogue's own request after the victim's, so anything
        // routed to the rogue before it has arrived once it is here
        const own = await createJob(server, { job_type: 'reboot', targets: { devices: [rogueDev.id] } });
        await rogue.waitFor('request', own.id);
      }
      expect(
        rogue.messages.filter((m) => !m.topic.startsWith(`fleetjobs/${rogueDev.id}/`)),
        `subscribed ${filter}`,
      ).toEqual([]);
      await rogue.end();
    }
    await waitJob(
      server,
      job.id,
      'target in_progress',
      (_j, ts) => target(ts, victim.id).status === 'in_progress',
    );

    // publishing under the victim's id: each attempt on its own connection (a broker may drop it)
    const attempts: [string, string][] = [
      [
        `fleetjobs/${victim.id}/jobs/${job.id}/status`,
        JSON.stringify({ status: 'successful', progress: 100 }),
      ],
      [
        `fleetjobs/${victim.id}/jobs/${job.id}/status`,
        JSON.stringify({ status: 'failed', message: 'rogue' }),
      ],
      [presenceTopic(victim.id), 'offline'],
      [`fleetjobs/${victim.id}/state`, JSON.stringify({ firmware_version: '6.6.6', signal_percent: 1 })],
    ];
    for (const [topic, payload] of attempts) {
      const r = await Device.connect(server.mqttPort, rogueDev.id, rogueDev.token, { announce: false });
      await r.attempt(() =>
        r.client.publishAsync(topic, payload, { qos: 1, retain: topic.endsWith('/presence') }),
      );
      await r.end();
    }
    // the rogue's own connect/disconnects did not touch the victim either; a message the victim
    // sends afterwards is applied, and nothing of the rogue's is
    await v.status(job.id, { status: 'in_progress', progress: 37, message: 'mine' });
    const { targets } = await waitJob(
      server,
      job.id,
      'progress 37',
      (_j, ts) => target(ts, victim.id).progress === 37,
    );
    expect(target(targets, victim.id)).toMatchObject({ status: 'in_progress', message: 'mine' });
    const dev = await getDevice(server, victim.id);
    expect(dev.connection_status).toBe('connected');
    expect(dev.firmware_version).toBe('1.0');
    expect(dev.signal_percent ?? null).toBeNull();
    await v.end();
  });
});

describe('§7 presence', () => {
  async function waitStatus(id: string, status: string): Promise<Json> {
    return until(`${id} ${status}`, async () => {
      const d = await getDevice(server, id);
      return d.connection_status === status ? d : undefined;
    });
  }

  it('a new device is disconnected with no connect/disconnect/update times', async () => {
    const [a] = await createDevices(server, [deviceId('C1')]);
    if (!a) throw new Error('device');
    const d = await getDevice(server, a.id);
    expect(d).toMatchObject({ connection_status: 'disconnected', last_connect: null, last_disconnect: null });
  });

  it('online sets connected + last_connect; a clean offline sets disconnected + last_disconnect', async () => {
    const [a] = await createDevices(server, [deviceId('C2')]);
    if (!a) throw new Error('device');
    const before = Date.now();
    const dev = await Device.connect(server.mqttPort, a.id, a.token);
    const on = await waitStatus(a.id, 'connected');
    expect(on.last_connect).toMatch(ISO_MS);
    expect(Date.parse(on.last_connect)).toBeGreaterThanOrEqual(before - 5);
    expect(on.last_disconnect).toBeNull();

    const beforeOff = Date.now();
    await dev.offline();
    const off = await waitStatus(a.id, 'disconnected');
    expect(off.last_disconnect).toMatch(ISO_MS);
    expect(Date.parse(off.last_disconnect)).toBeGreaterThanOrEqual(beforeOff - 5);
    expect(off.last_connect).toBe(on.last_connect);

    // a second online moves last_connect on, keeps last_disconnect
    const again = await Device.connect(server.mqttPort, a.id, a.token);
    const on2 = await until('new last_connect', async () => {
      const d = await getDevice(server, a.id);
      return d.connection_status === 'connected' && d.last_connect !== on.last_connect ? d : undefined;
    });
    expect(Date.parse(on2.last_connect)).toBeGreaterThanOrEqual(Date.parse(on.last_connect));
    expect(on2.last_disconnect).toBe(off.last_disconnect);
    await again.offline();
    await waitStatus(a.id, 'disconnected');
  });

  it('a connection that dies (socket destroyed, no offline) marks the device disconnected', async () => {
    const [a] = await createDevices(server, [deviceId('C3')]);
    if (!a) throw new Error('device');
    const dev = await Device.connect(server.mqttPort, a.id, a.token);
    await waitStatus(a.id, 'connected');
    const before = Date.now();
    await dev.kill();
    const off = await waitStatus(a.id, 'disconnected');
    expect(off.last_disconnect).toMatch(ISO_MS);
    expect(Date.parse(off.last_disconnect)).toBeGreaterThanOrEqual(before - 5);
  });

  it('a client that goes silent is disconnected when its keep-alive expires', async () => {
    const [a] = await createDevices(server, [deviceId('C4')]);
    if (!a) throw new Error('device');
    const sock = await silentDevice(server.mqttPort, a.id, a.token, 1);
    try {
      await waitStatus(a.id, 'connected');
      const off = await waitStatus(a.id, 'disconnected');
      expect(off.last_disconnect).toMatch(ISO_MS);
      // the broker, not the client, ended it
      await until('socket closed by the broker', () => (sock.closed ? true : undefined));
    } finally {
      sock.destroy();
    }
  });

  it('a device that reconnects while its old connection is still open ends connected and gets its request', async () => {
    const [a] = await createDevices(server, [deviceId('C6')]);
    if (!a) throw new Error('device');
    const old = await Device.connect(server.mqttPort, a.id, a.token);
    const job = await createJob(server, { job_type: 'reboot', targets: { devices: [a.id] }, payload: 'x' });
    await old.waitFor('request', job.id);
    await waitStatus(a.id, 'connected');
    const fresh = await Device.connect(server.mqttPort, a.id, a.token); // takes the session over
    await fresh.waitFor('request', job.id);
    await until('old connection closed by the broker', () => (old.closed ? true : undefined));
    await fresh.status(job.id, { status: 'successful' });
    await waitJob(server, job.id, 'complete', (j) => j.job_status === 'complete');
    expect((await getDevice(server, a.id)).connection_status).toBe('connected');
    await fresh.offline();
    await waitStatus(a.id, 'disconnected');
  });

  it('connecting without announcing online does not mark the device connected; online does', async () => {
    const [a] = await createDevices(server, [deviceId('C5')]);
    if (!a) throw new Error('device');
    const job = await createJob(server, {
      job_type: 'reboot',
      targets: { devices: [a.id] },
    });
    const dev = await Device.connect(server.mqttPort, a.id, a.token, { announce: false });
    await dev.online();
    await waitStatus(a.id, 'connected');
    await dev.waitFor('request', job.id);
    await dev.offline();
    await waitStatus(a.id, 'disconnected');
  });
});

describe('§7 state', () => {
  it('updates the reported fields and last_update, and ignores group, tags, name and the rest', async () => {
    const [a] = await createDevices(server, [deviceId('D1')], {
      name: 'orig',
      group: '/Orig',
      tags: ['keep'],
      restricted_status: 'unrestricted',
      description: 'desc',
    });
    if (!a) throw new Error('device');
    const dev = await Device.connect(server.mqttPort, a.id, a.token);
    await until('connected', async () =>
      (await getDevice(server, a.id)).connection_status === 'connected' ? true : undefined,
    );
    const before = await getDevice(server, a.id);
    const t0 = Date.now();
    const reported = {
      type: 'router',
      vendor_id: 0xfe000002,
      firmware_version: '9.9.9',
      serial_number: 'SN-77',
      mac: '00:40:9D:AA:BB:CC',
      ip: '10.1.2.3',
      public_ip: '203.0.113.77',
      health_status: 'warning',
      carrier: 'c1',
      carrier2: 'c2',
      network: 'LTE',
      network2: '5G',
      signal_percent: 42,
      signal_percent2: 43,
      signal_quality: -7,
      signal_quality2: -8,
      signal_strength: -85,
      signal_strength2: -86,
    };
    await dev.state({
      ...reported,
      group: '/Evil',
      tags: ['evil'],
      name: 'evil',
      description: 'evil',
      restricted_status: 'disabled',
      connection_status: 'disconnected',
      last_connect: '2000-01-01T00:00:00.000Z',
      customer_id: 999,
      presence: 'offline',
    });
    const after = await until('state applied', async () => {
      const d = await getDevice(server, a.id);
      return d.firmware_version === '9.9.9' ? d : undefined;
    });
    expect(after).toMatchObject(reported);
    expect(after).toMatchObject({
      name: 'orig',
      group: '/Orig',
      tags: ['keep'],
      description: 'desc',
      restricted_status: 'unrestricted',
      connection_status: 'connected',
      last_connect: before.last_connect,
      customer_id: before.customer_id,
    });
    expect(after.last_update).toMatch(ISO_MS);
    expect(Date.parse(after.last_update)).toBeGreaterThanOrEqual(t0 - 5);

    // a later partial state changes only what it names
    await dev.state({ signal_percent: 7 });
    const later = await until('second state', async () => {
      const d = await getDevice(server, a.id);
      return d.signal_percent === 7 ? d : undefined;
    });
    expect(later).toMatchObject({ ...reported, signal_percent: 7, name: 'orig' });
    expect(Date.parse(later.last_update)).toBeGreaterThanOrEqual(Date.parse(after.last_update));
    await dev.offline();
  });

  it('a state that tries to move the device into a job selection does not change the targets', async () => {
    const [a, b] = await createDevices(server, [deviceId('D2'), deviceId('D2')], { group: '/StateOut' });
    if (!a || !b) throw new Error('devices');
    const dev = await Device.connect(server.mqttPort, b.id, b.token);
    await dev.state({ group: '/StateIn', tags: ['statein'] });
    await dev.state({ firmware_version: 'marker' });
    await until('marker', async () =>
      (await getDevice(server, b.id)).firmware_version === 'marker' ? true : undefined,
    );
    const r = await server.post('/ws/v1/jobs/inventory', {
      job_type: 'reboot',
      targets: { groups: ['/StateIn'], tags: ['statein'] },
    });
    expect(r.status, r.text).toBe(400); // no target at all
    const job = await createJob(server, { job_type: 'reboot', targets: { groups: ['/StateOut'] } });
    const { targets } = await snapshot(server, job.id);
    expect(targets.map((t: Json) => t.device_id).sort()).toEqual([a.id, b.id].sort());
    await dev.offline();
  });
});
