// §4 devices: CRUD, batches, tokens, deletion and its effect on job targets.
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Auth,
  csvLines,
  deviceId,
  expectError,
  ISO_MS,
  q,
  type Server,
  startServer,
} from './harness.js';

let server: Server;
let alice: Auth;
let bob: Auth;

beforeAll(async () => {
  server = await startServer();
  [alice, bob] = await Promise.all([server.user('dev-a', 'dalice'), server.user('dev-b', 'dbob')]);
  server.defaultAuth = alice;
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** Whether the embedded broker accepts an MQTT 3.1.1 connection as this device with this password. */
async function brokerAccepts(id: string, password: string): Promise<boolean> {
  const client = mqtt.connect(`mqtt://127.0.0.1:${server.mqttPort}`, {
    clientId: id,
    username: id,
    password,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    will: { topic: `fleetjobs/${id}/presence`, payload: Buffer.from('offline'), qos: 1, retain: true },
  });
  const accepted = await new Promise<boolean>((resolve) => {
    client.once('connect', () => resolve(true));
    client.once('error', () => resolve(false));
    client.once('close', () => resolve(false));
  });
  await client.endAsync(true);
  return accepted;
}

const FULL = {
  vendor_id: 0xfe000002,
  name: 'full device',
  type: 'router',
  firmware_version: '1.2.3',
  serial_number: 'SN-1',
  mac: '00:40:9D:01:02:03',
  ip: '10.0.0.2',
  public_ip: '203.0.113.9',
  description: 'a description',
  notes: 'notes',
  contact: 'ops@example.com',
  location: 'roof',
  carrier: 'AT&T',
  carrier2: 'Verizon',
  network: 'LTE',
  network2: '5G',
  group: '/NorthWest/Seattle',
  tags: ['sensor', 'important'],
  health_status: 'warning',
  restricted_status: 'restricted',
  signal_percent: 80,
  signal_percent2: 20,
  signal_quality: -9.5,
  signal_quality2: -12,
  signal_strength: -85,
  signal_strength2: -90,
};

describe('§4 create and read', () => {
  it('one device: 201 envelope with a device_token shown only once; every settable field kept', async () => {
    const id = deviceId('D1');
    const r = await server.post('/ws/v1/devices/inventory', { id, ...FULL });
    expect(r.status, r.text).toBe(201);
    expect(r.body.count).toBe(1);
    const made = r.body.list[0];
    expect(typeof made.device_token).toBe('string');
    expect(made.device_token.length).toBeGreaterThanOrEqual(16);
    const got = await server.get(`/ws/v1/devices/inventory/${id}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id, ...FULL });
    expect(Number.isInteger(got.body.customer_id)).toBe(true);
    expect(got.body.connection_status).toBe('disconnected');
    expect(got.text).not.toContain(made.device_token);
    const list = await server.get(`/ws/v1/devices/inventory?query=${q(`id = '${id}'`)}`);
    expect(list.text).not.toContain(made.device_token);
    const csv = await server.get('/ws/v1/devices/bulk');
    expect(csv.text).not.toContain(made.device_token);
    expect(server.storeBytes()).not.toContain(made.device_token);
  });

  it('defaults: health unknown, restricted unrestricted, missing values null', async () => {
    const id = deviceId('D2');
    expect((await server.post('/ws/v1/devices/inventory', { id })).status).toBe(201);
    const d = (await server.get(`/ws/v1/devices/inventory/${id}`)).body;
    expect(d.health_status).toBe('unknown');
    expect(d.restricted_status).toBe('unrestricted');
    expect(d.name).toBeNull();
    expect(d.signal_percent).toBeNull();
    expect(d.last_connect).toBeNull();
  });

  it('ids are stored upper-case; a lower-case id finds the device', async () => {
    const id = deviceId('D3');
    const r = await server.post('/ws/v1/devices/inventory', { id: id.toLowerCase() });
    expect(r.status).toBe(201);
    expect(r.body.list[0].id).toBe(id);
    expect((await server.get(`/ws/v1/devices/inventory/${id}`)).body.id).toBe(id);
    expectError(await server.post('/ws/v1/devices/inventory', { id }), 409);
  });

  it('a bad id, a bad enum, signal_percent out of range: 400', async () => {
    for (const id of ['nope', '00000000-00000000-0004F3FF', '00000000-00000000-0004F3FF-FF0123AG', '']) {
      expectError(await server.post('/ws/v1/devices/inventory', { id }), 400);
    }
    expectError(await server.post('/ws/v1/devices/inventory', {}), 400);
    expectError(
      await server.post('/ws/v1/devices/inventory', { id: deviceId('D4'), health_status: 'great' }),
      400,
    );
    expectError(
      await server.post('/ws/v1/devices/inventory', { id: deviceId('D4'), restricted_status: 'x' }),
      400,
    );
    expectError(
      await server.post('/ws/v1/devices/inventory', { id: deviceId('D4'), signal_percent: 101 }),
      400,
    );
    expectError(
      await server.post('/ws/v1/devices/inventory', { id: deviceId('D4'), signal_percent: -1 }),
      400,
    );
  });

  it('fields set by the service cannot be given: 400', async () => {
    for (const [field, value] of [
      ['connection_status', 'connected'],
      ['last_connect', '2026-11-28T17:40:00.000Z'],
      ['last_disconnect', '2026-11-28T17:40:00.000Z'],
      ['last_update', '2026-11-28T17:40:00.000Z'],
      ['customer_id', 1],
    ] as const) {
      const id = deviceId('D5');
      expectError(await server.post('/ws/v1/devices/inventory', { id, [field]: value }), 400);
      expectError(await server.get(`/ws/v1/devices/inventory/${id}`), 404);
    }
  });

  it('a device_token of 16–128 printable characters is kept; other lengths are 400', async () => {
    const token = 'factory-token-0123456789';
    const id = deviceId('D6');
    const r = await server.post('/ws/v1/devices/inventory', { id, device_token: token });
    expect(r.status).toBe(201);
    expect(r.body.list[0].device_token).toBe(token);
    expectError(
      await server.post('/ws/v1/devices/inventory', { id: deviceId('D6'), device_token: 'short' }),
      400,
    );
    expectError(
      await server.post('/ws/v1/devices/inventory', { id: deviceId('D6'), device_token: 'x'.repeat(129) }),
      400,
    );
    expectError(
      await server.post('/ws/v1/devices/inventory', {
        id: deviceId('D6'),
        device_token: `bad\ttoken-0123456789`,
      }),
      400,
    );
    expect(
      (await server.post('/ws/v1/devices/inventory', { id: deviceId('D6'), device_token: 'y'.repeat(128) }))
        .status,
    ).toBe(201);
  });

  it('an unknown device id is 404', async () => {
    expectError(await server.get(`/ws/v1/devices/inventory/${deviceId('D7')}`), 404);
    expectError(await server.put(`/ws/v1/devices/inventory/${deviceId('D7')}`, { name: 'x' }), 404);
    expectError(await server.del(`/ws/v1/devices/inventory/${deviceId('D7')}`), 404);
    expectError(await server.post(`/ws/v1/devices/inventory/${deviceId('D7')}/token`, {}), 404);
  });
});

describe('§4 batches', () => {
  it('an array creates all, each with its own token', async () => {
    const ids = [deviceId('E1'), deviceId('E1'), deviceId('E1')];
    const r = await server.post(
      '/ws/v1/devices/inventory',
      ids.map((id) => ({ id })),
    );
    expect(r.status).toBe(201);
    expect(r.body.count).toBe(3);
    expect(r.body.list.map((d: { id: string }) => d.id)).toEqual(ids);
    expect(new Set(r.body.list.map((d: { device_token: string }) => d.device_token)).size).toBe(3);
  });

  it('one bad or duplicate device and none is created', async () => {
    const existing = deviceId('E2');
    expect((await server.post('/ws/v1/devices/inventory', { id: existing })).status).toBe(201);
    const fresh = [deviceId('E2'), deviceId('E2')];
    expectError(await server.post('/ws/v1/devices/inventory', [{ id: fresh[0] }, { id: existing }]), 409);
    expectError(await server.post('/ws/v1/devices/inventory', [{ id: fresh[0] }, { id: fresh[0] }]), 409);
    expectError(
      await server.post('/ws/v1/devices/inventory', [{ id: fresh[0] }, { id: fresh[1], name: 5 }]),
      400,
    );
    expectError(await server.post('/ws/v1/devices/inventory', [{ id: fresh[0] }, { id: 'bad' }]), 400);
    for (const id of fresh) expectError(await server.get(`/ws/v1/devices/inventory/${id}`), 404);
  });

  it('a device id of another account is 409, and that batch creates nothing', async () => {
    const theirs = deviceId('E3');
    expect((await server.post('/ws/v1/devices/inventory', { id: theirs }, { auth: bob })).status).toBe(201);
    const mine = deviceId('E3');
    expectError(await server.post('/ws/v1/devices/inventory', [{ id: mine }, { id: theirs }]), 409);
    expectError(await server.get(`/ws/v1/devices/inventory/${mine}`), 404);
    expectError(await server.get(`/ws/v1/devices/inventory/${theirs}`), 404);
  });

  it('more than 10,000 devices in one request is 400', async () => {
    const list = Array.from({ length: 10_001 }, (_, i) => ({
      id: `00000000-00000000-EEEEEEEE-${i.toString(16).padStart(8, '0').toUpperCase()}`,
    }));
    expectError(await server.post('/ws/v1/devices/inventory', list), 400);
    expectError(await server.get(`/ws/v1/devices/inventory/${list[0]?.id}`), 404);
  });
});

describe('§4 update, token, delete', () => {
  it('PUT changes only the given fields', async () => {
    const id = deviceId('F1');
    await server.post('/ws/v1/devices/inventory', { id, name: 'before', notes: 'keep', tags: ['a'] });
    const r = await server.put(`/ws/v1/devices/inventory/${id}`, {
      name: 'after',
      tags: ['b', 'c'],
      signal_percent: 7,
    });
    expect(r.status, r.text).toBeLessThan(300);
    const d = (await server.get(`/ws/v1/devices/inventory/${id}`)).body;
    expect(d.name).toBe('after');
    expect(d.notes).toBe('keep');
    expect(d.tags).toEqual(['b', 'c']);
    expect(d.signal_percent).toBe(7);
    expectError(await server.put(`/ws/v1/devices/inventory/${id}`, { connection_status: 'connected' }), 400);
    expectError(await server.put(`/ws/v1/devices/inventory/${id}`, { customer_id: 2 }), 400);
    expectError(await server.put(`/ws/v1/devices/inventory/${id}`, { health_status: 'fine' }), 400);
    expect((await server.get(`/ws/v1/devices/inventory/${id}`)).body.name).toBe('after');
  });

  it('POST …/token replaces the token; a body sets it', async () => {
    const id = deviceId('F2');
    const made = await server.post('/ws/v1/devices/inventory', { id });
    const old = made.body.list[0].device_token;
    const r = await server.post(`/ws/v1/devices/inventory/${id}/token`, {});
    expect(r.status, r.text).toBeLessThan(300);
    expect(r.body.id).toBe(id);
    expect(typeof r.body.device_token).toBe('string');
    expect(r.body.device_token).not.toBe(old);
    const noBody = await server.request('POST', `/ws/v1/devices/inventory/${id}/token`);
    expect(noBody.status, noBody.text).toBeLessThan(300);
    expect(noBody.body.device_token).not.toBe(r.body.device_token);
    const set = await server.post(`/ws/v1/devices/inventory/${id}/token`, {
      device_token: 'my-own-token-123456',
    });
    expect(set.status).toBeLessThan(300);
    expect(set.body).toEqual({ id, device_token: 'my-own-token-123456' });
    expectError(await server.post(`/ws/v1/devices/inventory/${id}/token`, { device_token: 'short' }), 400);
    expectError(
      await server.post(`/ws/v1/devices/inventory/${id}/token`, { token: 'my-own-token-123456' }),
      400,
    );
  });

  it('the device token is its MQTT password; a replaced token stops working at once', async () => {
    const id = deviceId('F5');
    const made = await server.post('/ws/v1/devices/inventory', { id });
    const first = made.body.list[0].device_token as string;
    expect(await brokerAccepts(id, first)).toBe(true);
    expect(await brokerAccepts(id, `${first}x`)).toBe(false);
    const replaced = (await server.post(`/ws/v1/devices/inventory/${id}/token`, {})).body
      .device_token as string;
    expect(await brokerAccepts(id, first)).toBe(false);
    expect(await brokerAccepts(id, replaced)).toBe(true);
    const own = 'factory-set-token-0001';
    await server.post(`/ws/v1/devices/inventory/${id}/token`, { device_token: own });
    expect(await brokerAccepts(id, replaced)).toBe(false);
    expect(await brokerAccepts(id, own)).toBe(true);
  });

  it('DELETE removes the device; its queued targets fail with "device deleted" and keep device_id', async () => {
    const gone = deviceId('F3');
    const stays = deviceId('F3');
    await server.post('/ws/v1/devices/inventory', [
      { id: gone, name: 'gone' },
      { id: stays, name: 'stays' },
    ]);
    const both = (
      await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { devices: [gone, stays] } })
    ).body.id;
    const only = (
      await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { devices: [gone] } })
    ).body.id;

    const del = await server.del(`/ws/v1/devices/inventory/${gone}`);
    expect(del.status).toBeGreaterThanOrEqual(200);
    expect(del.status).toBeLessThan(300);
    expectError(await server.get(`/ws/v1/devices/inventory/${gone}`), 404);

    const targets = await server.get(`/ws/v1/jobs/${both}/targets`);
    const t = targets.body.list.find((x: { device_id: string }) => x.device_id === gone);
    expect(t).toBeDefined();
    expect(t.status).toBe('failed');
    expect(t.message).toBe('device deleted');
    expect(t.end_time).toMatch(ISO_MS);
    const other = targets.body.list.find((x: { device_id: string }) => x.device_id === stays);
    expect(other.status).toBe('queued');
    const bothJob = (await server.get(`/ws/v1/jobs/${both}`)).body;
    expect(bothJob.progress_failures).toBe(1);
    expect(bothJob.progress_pending).toBe(1);
    expect(['new', 'in_progress']).toContain(bothJob.job_status);

    // every target failed: the job is failed and finished
    const onlyJob = (await server.get(`/ws/v1/jobs/${only}`)).body;
    expect(onlyJob.job_status).toBe('failed');
    expect(onlyJob.progress_failures).toBe(1);
    expect(onlyJob.progress_pending).toBe(0);
    expect(onlyJob.job_completion_time).toMatch(ISO_MS);
    // terminal: cancel is 409, delete works
    expectError(await server.put(`/ws/v1/jobs/cancel/${only}`), 409);

    // registered again: the old targets still do not refer to it
    expect((await server.post('/ws/v1/devices/inventory', { id: gone, name: 'gone' })).status).toBe(201);
    const byName = await server.get(`/ws/v1/jobs/${both}/targets?query=${q("name = 'gone'")}`);
    expect(byName.body.count).toBe(0);
    const byId = await server.get(`/ws/v1/jobs/${both}/targets?query=${q(`device_id = '${gone}'`)}`);
    if (byId.status === 200) expect(byId.body.count).toBe(1);
    const noName = await server.get(`/ws/v1/jobs/${both}/targets?query=${q('name = empty')}`);
    expect(noName.body.list.map((x: { device_id: string }) => x.device_id)).toEqual([gone]);
    const stillFailed = await server.get(`/ws/v1/jobs/${only}/targets`);
    expect(stillFailed.body.list[0].status).toBe('failed');
    expect((await server.del(`/ws/v1/jobs/inventory/${only}`)).status).toBe(200);
  });
});

describe('§4 group', () => {
  it('"" or absent is no group', async () => {
    const a = deviceId('F6');
    const b = deviceId('F6');
    await server.post('/ws/v1/devices/inventory', [
      { id: a, group: '', name: 'nogroup-a' },
      { id: b, name: 'nogroup-b' },
    ]);
    const r = await server.get(
      `/ws/v1/devices/inventory?query=${q("name startsWith 'nogroup-' and group = empty")}`,
    );
    expect(r.body.list.map((d: { id: string }) => d.id).sort()).toEqual([a, b].sort());
    const ne = await server.get(
      `/ws/v1/devices/inventory?query=${q("name startsWith 'nogroup-' and group <> '/x'")}`,
    );
    expect(ne.body.count).toBe(2);
    // §3: fields without a value are null in JSON (an empty cell in CSV)
    for (const id of [a, b])
      expect((await server.get(`/ws/v1/devices/inventory/${id}`)).body.group).toBeNull();
    const csv = await server.get(
      `/ws/v1/devices/bulk?fields=id,group&query=${q("name startsWith 'nogroup-'")}`,
    );
    expect(csvLines(csv.text)).toEqual(['id,group', ...[a, b].sort().map((id) => `${id},`)]);
  });
});

describe('§4 device list, query, CSV', () => {
  it('GET /ws/v1/devices/inventory takes query and orderby; vendor_id in hex or decimal', async () => {
    const a = deviceId('F4');
    const b = deviceId('F4');
    await server.post('/ws/v1/devices/inventory', [
      { id: a, vendor_id: 0xfe000002, name: 'vendor-a' },
      { id: b, vendor_id: 17, name: 'vendor-b' },
    ]);
    const hex = await server.get(
      `/ws/v1/devices/inventory?query=${q("name startsWith 'vendor-' and vendor_id = 0xFE000002")}`,
    );
    expect(hex.body.list.map((d: { id: string }) => d.id)).toEqual([a]);
    const dec = await server.get(
      `/ws/v1/devices/inventory?query=${q(`name startsWith 'vendor-' and vendor_id = ${0xfe000002}`)}`,
    );
    expect(dec.body.list.map((d: { id: string }) => d.id)).toEqual([a]);
    const hex2 = await server.get(`/ws/v1/devices/inventory?query=${q('vendor_id = 0x11')}`);
    expect(hex2.body.list.map((d: { id: string }) => d.id)).toEqual([b]);
  });
});
