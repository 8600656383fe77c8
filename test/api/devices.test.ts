import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_FIELDS } from '../../src/model/device.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

describe('devices', () => {
  let h: Harness;
  let bob: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
  });
  afterAll(() => h.close());

  it('GET /ws/v1/devices summarizes the device routes', async () => {
    const response = await h.get(bob, '/ws/v1/devices');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      inventory_uri: '/ws/v1/devices/inventory',
      inventory_xml_uri: '/ws/v1/devices/inventory.xml',
      bulk_uri: '/ws/v1/devices/bulk',
    });
  });

  it('creates one device with every writable field, answering the envelope with a token shown once', async () => {
    const response = await h.post(bob, '/ws/v1/devices/inventory', {
      id: '00000000-00000000-0004f3ff-ff0123ab',
      vendor_id: 0xfe000002,
      name: 'pump 1',
      type: 'IX20',
      firmware_version: '1.2.3',
      serial_number: 'SN1',
      mac: '00:04:F3:01:23:AB',
      ip: '10.0.0.1',
      public_ip: '203.0.113.1',
      description: 'north pump',
      notes: 'n',
      contact: 'ops',
      location: 'Seattle',
      carrier: 'AT&T',
      carrier2: null,
      network: 'LTE',
      network2: null,
      group: 'NorthWest/Seattle/',
      tags: ['sensor', 'important'],
      health_status: 'normal',
      restricted_status: 'restricted',
      signal_percent: 80,
      signal_percent2: null,
      signal_quality: -9.5,
      signal_quality2: null,
      signal_strength: -85,
      signal_strength2: null,
    });
    expect(response.statusCode, response.body).toBe(201);
    const body = response.json();
    expect(body.count).toBe(1);
    expect(body.list).toHaveLength(1);
    const device = body.list[0];
    expect(device.id).toBe('00000000-00000000-0004F3FF-FF0123AB');
    expect(device.customer_id).toBe(bob.accountId);
    expect(device.group).toBe('/NorthWest/Seattle');
    expect(device.tags).toEqual(['sensor', 'important']);
    expect(device.connection_status).toBe('disconnected');
    expect(device.last_connect).toBeNull();
    expect(device.device_token).toEqual(expect.any(String));
    expect(device.device_token.length).toBeGreaterThanOrEqual(16);

    const read = await h.get(bob, '/ws/v1/devices/inventory/00000000-00000000-0004F3FF-FF0123AB');
    expect(read.statusCode).toBe(200);
    const stored = read.json();
    expect(Object.keys(stored)).toEqual([...DEVICE_FIELDS]);
    expect(stored).not.toHaveProperty('device_token');
    expect(stored.vendor_id).toBe(0xfe000002);
    expect(stored.carrier).toBe('AT&T');
    expect(stored.restricted_status).toBe('restricted');
    expect(stored.signal_strength).toBe(-85);
    // The id is case-insensitive in the path too.
    expect(
      (await h.get(bob, '/ws/v1/devices/inventory/00000000-00000000-0004f3ff-ff0123ab')).statusCode,
    ).toBe(200);
  });

  it('creates a batch in one transaction: one bad or duplicate device and none is created', async () => {
    const before = (await h.get(bob, '/ws/v1/devices/inventory')).json().count;
    const duplicate = await h.post(bob, '/ws/v1/devices/inventory', [
      { id: deviceId(100) },
      { id: '00000000-00000000-0004F3FF-FF0123AB' },
    ]);
    expectError(duplicate, 409);
    const repeated = await h.post(bob, '/ws/v1/devices/inventory', [
      { id: deviceId(101) },
      { id: deviceId(101) },
    ]);
    expectError(repeated, 409);
    const badId = await h.post(bob, '/ws/v1/devices/inventory', [{ id: deviceId(102) }, { id: 'not-an-id' }]);
    expect(expectError(badId, 400)).toContain('not-an-id');
    const badType = await h.post(bob, '/ws/v1/devices/inventory', [
      { id: deviceId(103) },
      { id: deviceId(104), tags: 'x' },
    ]);
    expect(expectError(badType, 400)).toBe('body[1].tags must be array');
    expect((await h.get(bob, '/ws/v1/devices/inventory')).json().count).toBe(before);

    const created = await h.devices(bob, 3, (n) => ({ name: `batch ${n}` }), 7);
    expect(created.map((device) => device.id)).toEqual([deviceId(1, 7), deviceId(2, 7), deviceId(3, 7)]);
    expect(new Set(created.map((device) => device.device_token)).size).toBe(3);
  });

  it('keeps a token given at creation and checks its rules', async () => {
    const token = 'factory-token-0123456789';
    const response = await h.post(bob, '/ws/v1/devices/inventory', {
      id: deviceId(200),
      device_token: token,
    });
    expect(response.statusCode).toBe(201);
    expect(response.json().list[0].device_token).toBe(token);
    expectError(
      await h.post(bob, '/ws/v1/devices/inventory', { id: deviceId(201), device_token: 'short' }),
      400,
    );
    expectError(
      await h.post(bob, '/ws/v1/devices/inventory', { id: deviceId(202), device_token: 1234567890123456 }),
      400,
    );
    expect((await h.get(bob, `/ws/v1/devices/inventory/${deviceId(201)}`)).statusCode).toBe(404);
  });

  it('replaces a token, generated or given', async () => {
    const generated = await h.post(bob, `/ws/v1/devices/inventory/${deviceId(200)}/token`);
    expect(generated.statusCode).toBe(200);
    expect(generated.json()).toEqual({ id: deviceId(200), device_token: expect.any(String) });
    const given = await h.post(bob, `/ws/v1/devices/inventory/${deviceId(200)}/token`, {
      device_token: 'another-factory-token',
    });
    expect(given.json()).toEqual({ id: deviceId(200), device_token: 'another-factory-token' });
    expectError(await h.post(bob, `/ws/v1/devices/inventory/${deviceId(200)}/token`, { token: 'x' }), 400);
    expectError(await h.post(bob, `/ws/v1/devices/inventory/${deviceId(999)}/token`), 404);
  });

  it('updates the given fields only, and refuses service fields, wrong types and unknown keys', async () => {
    const url = `/ws/v1/devices/inventory/${deviceId(1, 7)}`;
    const updated = await h.put(bob, url, {
      name: 'renamed',
      tags: ['a'],
      group: '/South',
      signal_percent: 5,
    });
    expect(updated.statusCode, updated.body).toBe(200);
    expect(updated.json()).toMatchObject({
      id: deviceId(1, 7),
      name: 'renamed',
      tags: ['a'],
      group: '/South',
      signal_percent: 5,
    });
    // An unchanged id may be sent back; a changed one may not.
    expect((await h.put(bob, url, { id: deviceId(1, 7).toLowerCase(), notes: 'x' })).statusCode).toBe(200);
    expectError(await h.put(bob, url, { id: deviceId(2, 7) }), 400);
    for (const field of [
      'connection_status',
      'last_connect',
      'last_disconnect',
      'last_update',
      'customer_id',
    ]) {
      expect(expectError(await h.put(bob, url, { [field]: null }), 400)).toContain(field);
    }
    expect(expectError(await h.put(bob, url, { colour: 'red' }), 400)).toBe("body: unknown field 'colour'");
    expect(expectError(await h.put(bob, url, { signal_percent: '5' }), 400)).toBe(
      'body.signal_percent must be number or null',
    );
    expect(expectError(await h.put(bob, url, { vendor_id: 1.5 }), 400)).toContain('vendor_id');
    expect(expectError(await h.put(bob, url, { tags: ['a', 1] }), 400)).toBe('body.tags[1] must be string');
    expect(expectError(await h.put(bob, url, { health_status: 'great' }), 400)).toContain(
      'normal, warning, error, unknown',
    );
    expectError(await h.put(bob, url, { signal_percent: 101 }), 400);
    expectError(await h.put(bob, url, { device_token: 'a-new-token-for-put' }), 400);
    expectError(await h.put(bob, url, [{ name: 'x' }]), 400);
    const after = (await h.get(bob, url)).json();
    expect(after).toMatchObject({ name: 'renamed', notes: 'x', signal_percent: 5, health_status: 'unknown' });
    expectError(await h.put(bob, `/ws/v1/devices/inventory/${deviceId(999)}`, { name: 'x' }), 404);
  });

  it('deletes a device; its pending targets fail with "device deleted"', async () => {
    const [device] = await h.devices(bob, 1, () => ({}), 9);
    const job = await h.job(bob, { targets: { devices: [device?.id] } });
    const deleted = await h.delete(bob, `/ws/v1/devices/inventory/${device?.id}`);
    expect(deleted.statusCode).toBe(200);
    expect((await h.get(bob, `/ws/v1/devices/inventory/${device?.id}`)).statusCode).toBe(404);
    expectError(await h.delete(bob, `/ws/v1/devices/inventory/${device?.id}`), 404);
    const targets = (await h.get(bob, `/ws/v1/jobs/${job.id}/targets`)).json();
    expect(targets.list).toHaveLength(1);
    expect(targets.list[0]).toMatchObject({
      device_id: device?.id,
      status: 'failed',
      message: 'device deleted',
    });
    const after = (await h.get(bob, `/ws/v1/jobs/${job.id}`)).json();
    expect(after).toMatchObject({ job_status: 'failed', progress_failures: 1, progress_pending: 0 });
  });

  it('lists devices in id order with query and orderby, as JSON and XML, and exports CSV', async () => {
    const list = (await h.get(bob, '/ws/v1/devices/inventory')).json();
    const ids = list.list.map((device: { id: string }) => device.id);
    expect(ids).toEqual([...ids].sort());
    expect(list.size).toBe(1000);

    const query = encodeURIComponent("tags = 'SENSOR' and group startsWith '/northwest/'");
    const matched = (await h.get(bob, `/ws/v1/devices/inventory?query=${query}`)).json();
    expect(matched.list.map((device: { id: string }) => device.id)).toEqual([
      '00000000-00000000-0004F3FF-FF0123AB',
    ]);

    const byName = (
      await h.get(bob, '/ws/v1/devices/inventory?orderby=name%20asc&query=name%20startsWith%20%27batch%27')
    ).json();
    expect(byName.list.map((device: { name: string }) => device.name)).toEqual(['batch 2', 'batch 3']);

    const xml = await h.get(bob, '/ws/v1/devices/inventory.xml?size=2');
    expect(xml.headers['content-type']).toMatch(/^application\/xml/);
    const parsed = new XMLParser({ parseTagValue: false }).parse(xml.body);
    expect(parsed.result.count).toBe('2');
    expect(parsed.result.size).toBe('2');
    expect(parsed.result.next_uri).toMatch(/^\/ws\/v1\/devices\/inventory\.xml\?size=2&cursor=/);
    expect(parsed.result.list.device).toHaveLength(2);

    const csv = await h.get(bob, '/ws/v1/devices/bulk?fields=id,tags,group,last_connect&orderby=id%20asc');
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parseCsv(csv.body) as string[][];
    expect(rows[0]).toEqual(['id', 'tags', 'group', 'last_connect']);
    expect(rows.slice(1).map((row) => row[0])).toEqual(ids);
    const tagged = rows.find((row) => row[0] === '00000000-00000000-0004F3FF-FF0123AB');
    expect(tagged).toEqual([
      '00000000-00000000-0004F3FF-FF0123AB',
      '["sensor","important"]',
      '/NorthWest/Seattle',
      '',
    ]);
    expect(csv.body.endsWith('\r\n')).toBe(true);
    expectError(await h.get(bob, '/ws/v1/devices/bulk?fields=id,colour'), 400);
  });
});
