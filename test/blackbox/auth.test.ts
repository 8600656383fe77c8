// §2 authentication, accounts, roles; §3 error conventions; two-account isolation.
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, deviceId, q, type Reply, type Server, startServer } from './harness.js';

let server: Server;
let alice: Auth; // account A, role user
let bob: Auth; // account B
let reader: Auth; // account A, read_only
let admin: Auth; // account A, admin
let key: { id: string; secret: string };

beforeAll(async () => {
  server = await startServer();
  [alice, bob, reader, admin] = await Promise.all([
    server.user('A', 'alice'),
    server.user('B', 'bob'),
    server.user('A', 'reader', 'read_only'),
    server.user('A', 'adminA', 'admin'),
  ]);
  key = JSON.parse((await server.cli(['apikey', 'add', '--username', 'alice'])).stdout);
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

function expectError(r: Reply, status: number): void {
  expect(r.status).toBe(status);
  expect(r.body).toEqual({ error_status: status, error_message: expect.any(String) });
  expect(r.body.error_message.length).toBeGreaterThan(0);
  expect(r.text).not.toMatch(/\n\s+at /);
}

describe('§1 healthz', () => {
  it('GET /healthz answers 200 without authentication', async () => {
    expect((await server.get('/healthz', { auth: null })).status).toBe(200);
  });
});

describe('§2 authentication', () => {
  const routes = [
    '/ws/v1/jobs',
    '/ws/v1/jobs/inventory',
    '/ws/v1/jobs/inventory.xml',
    '/ws/v1/jobs/bulk',
    '/ws/v1/jobs/1',
    '/ws/v1/jobs/1/targets',
    '/ws/v1/devices/inventory',
    '/ws/v1/devices/bulk',
  ];

  it('every /ws/ route without credentials is 401 with the error body', async () => {
    for (const path of routes) expectError(await server.get(path, { auth: null }), 401);
    expectError(await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot' }, { auth: null }), 401);
    expectError(await server.put('/ws/v1/jobs/cancel/1', undefined, { auth: null }), 401);
    expectError(await server.del('/ws/v1/jobs/inventory/1', { auth: null }), 401);
  });

  it('wrong password, unknown user, wrong key secret, unknown key id: 401', async () => {
    expectError(await server.get('/ws/v1/jobs', { auth: { user: 'alice', password: 'wrong' } }), 401);
    expectError(await server.get('/ws/v1/jobs', { auth: { user: 'nobody', password: 'x' } }), 401);
    expectError(
      await server.get('/ws/v1/jobs', { auth: { keyId: key.id, keySecret: `${key.secret}x` } }),
      401,
    );
    expectError(await server.get('/ws/v1/jobs', { auth: { keyId: 'nope', keySecret: key.secret } }), 401);
    expectError(await server.get('/ws/v1/jobs', { auth: { keyId: key.id } }), 401);
  });

  it('Basic and API key both authenticate', async () => {
    expect((await server.get('/ws/v1/jobs/inventory', { auth: alice })).status).toBe(200);
    const r = await server.get('/ws/v1/jobs/inventory', { auth: { keyId: key.id, keySecret: key.secret } });
    expect(r.status).toBe(200);
  });

  it('an API key acts for its user and account', async () => {
    const id = deviceId('A1');
    const made = await server.post('/ws/v1/devices/inventory', { id }, { auth: alice });
    expect(made.status).toBe(201);
    const viaKey = await server.get(`/ws/v1/devices/inventory/${id}`, {
      auth: { keyId: key.id, keySecret: key.secret },
    });
    expect(viaKey.status).toBe(200);
    const job = await server.post(
      '/ws/v1/jobs/inventory',
      { job_type: 'reboot', targets: { devices: [id] } },
      { auth: { keyId: key.id, keySecret: key.secret } },
    );
    expect(job.status).toBe(201);
    expect(job.body.username).toBe('alice');
  });
});

describe('§2 roles', () => {
  it('read_only may GET but every write is 403', async () => {
    const id = deviceId('A2');
    expect((await server.post('/ws/v1/devices/inventory', { id }, { auth: alice })).status).toBe(201);
    const job = await server.post(
      '/ws/v1/jobs/inventory',
      { job_type: 'reboot', targets: { devices: [id] } },
      { auth: alice },
    );
    expect(job.status).toBe(201);
    const jobId = job.body.id;

    expect((await server.get('/ws/v1/jobs/inventory', { auth: reader })).status).toBe(200);
    expect((await server.get(`/ws/v1/jobs/${jobId}`, { auth: reader })).status).toBe(200);
    expect((await server.get(`/ws/v1/devices/inventory/${id}`, { auth: reader })).status).toBe(200);

    expectError(await server.post('/ws/v1/devices/inventory', { id: deviceId('A2') }, { auth: reader }), 403);
    expectError(await server.put(`/ws/v1/devices/inventory/${id}`, { name: 'x' }, { auth: reader }), 403);
    expectError(await server.post(`/ws/v1/devices/inventory/${id}/token`, {}, { auth: reader }), 403);
    expectError(
      await server.post(
        '/ws/v1/jobs/inventory',
        { job_type: 'reboot', targets: { devices: [id] } },
        { auth: reader },
      ),
      403,
    );
    expectError(await server.put(`/ws/v1/jobs/cancel/${jobId}`, undefined, { auth: reader }), 403);
    expectError(
      await server.put(`/ws/v1/jobs/inventory/cancel?query=${q('id > 0')}`, undefined, { auth: reader }),
      403,
    );
    expectError(await server.del(`/ws/v1/jobs/inventory/${jobId}`, { auth: reader }), 403);
    expectError(await server.del(`/ws/v1/jobs/cancel?query=${q('id > 0')}`, { auth: reader }), 403);
    expectError(await server.del(`/ws/v1/devices/inventory/${id}`, { auth: reader }), 403);

    // nothing changed
    const still = await server.get(`/ws/v1/jobs/${jobId}`, { auth: alice });
    expect(['new', 'in_progress']).toContain(still.body.job_status);
    expect((await server.get(`/ws/v1/devices/inventory/${id}`, { auth: alice })).status).toBe(200);
  });

  it('admin may read and write jobs and devices', async () => {
    const id = deviceId('A3');
    expect((await server.post('/ws/v1/devices/inventory', { id }, { auth: admin })).status).toBe(201);
    const job = await server.post(
      '/ws/v1/jobs/inventory',
      { job_type: 'reboot', targets: { devices: [id] } },
      { auth: admin },
    );
    expect(job.status).toBe(201);
    expect((await server.put(`/ws/v1/jobs/cancel/${job.body.id}`, undefined, { auth: admin })).status).toBe(
      200,
    );
  });
});

describe('§3 conventions', () => {
  it('an unknown route is 404 with the error body', async () => {
    expectError(await server.get('/ws/v1/nothing-here', { auth: alice }), 404);
    expectError(await server.get('/ws/v1/jobs/inventory/extra/segments', { auth: alice }), 404);
    expect((await server.get('/no/such/route', { auth: null })).status).toBe(404);
  });

  it('a body over 16 MiB is 413; just under is not 413', async () => {
    const big = JSON.stringify({ id: deviceId('A4'), notes: 'x'.repeat(16 * 1024 * 1024 + 16) });
    // A raw socket, not fetch: the server may answer 413 from the headers alone and close at once; a
    // client still writing the body then gets a reset that can discard the answer. So the body is only
    // sent if no answer came to the headers (for a server that reads the body before refusing it).
    const answer = await new Promise<{ status: number; text: string }>((resolve) => {
      const socket = connect(server.port, '127.0.0.1');
      let raw = '';
      socket.setEncoding('utf8');
      const sendBody = setTimeout(() => socket.end(big), 1000);
      socket.on('data', (d: string) => {
        clearTimeout(sendBody);
        raw += d;
      });
      socket.on('error', () => {}); // EPIPE/ECONNRESET once the server has answered and closed
      socket.on('close', () => {
        clearTimeout(sendBody);
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
        resolve({ status, text: raw.slice(raw.indexOf('\r\n\r\n') + 4) });
      });
      socket.on('end', () => socket.destroy());
      const auth = Buffer.from(`${alice.user}:${alice.password}`).toString('base64');
      socket.write(
        `POST /ws/v1/devices/inventory HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic ${auth}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(big)}\r\nConnection: close\r\n\r\n`,
      );
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.text)).toEqual({ error_status: 413, error_message: expect.any(String) });
    const under = JSON.stringify({ id: deviceId('A4'), notes: 'x'.repeat(15 * 1024 * 1024) });
    const r = await server.request('POST', '/ws/v1/devices/inventory', { auth: alice, rawBody: under });
    expect(r.status).not.toBe(413);
  });

  it('malformed JSON is 400', async () => {
    expectError(
      await server.request('POST', '/ws/v1/devices/inventory', { auth: alice, rawBody: '{"id": ' }),
      400,
    );
    expectError(await server.request('POST', '/ws/v1/jobs/inventory', { auth: alice, rawBody: 'nope' }), 400);
  });

  it('a field of the wrong type is 400 (no coercion)', async () => {
    const id = deviceId('A5');
    expectError(await server.post('/ws/v1/devices/inventory', { id, name: 5 }, { auth: alice }), 400);
    expectError(
      await server.post('/ws/v1/devices/inventory', { id, signal_percent: '5' }, { auth: alice }),
      400,
    );
    expectError(await server.post('/ws/v1/devices/inventory', { id, tags: 'sensor' }, { auth: alice }), 400);
    expectError(
      await server.post('/ws/v1/devices/inventory', { id, vendor_id: '0x10' }, { auth: alice }),
      400,
    );
    expect((await server.get(`/ws/v1/devices/inventory/${id}`, { auth: alice })).status).toBe(404);

    expect((await server.post('/ws/v1/devices/inventory', { id }, { auth: alice })).status).toBe(201);
    const base = { job_type: 'reboot', targets: { devices: [id] } };
    expectError(await server.post('/ws/v1/jobs/inventory', { ...base, job_type: 5 }, { auth: alice }), 400);
    expectError(
      await server.post('/ws/v1/jobs/inventory', { ...base, timeout: '600' }, { auth: alice }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', { ...base, description: 7 }, { auth: alice }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', { ...base, targets: { devices: id } }, { auth: alice }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', { ...base, targets: { all: 'true' } }, { auth: alice }),
      400,
    );
    expectError(
      await server.put(`/ws/v1/devices/inventory/${id}`, { signal_percent: '9' }, { auth: alice }),
      400,
    );
  });

  it('a field the route does not know is 400 (no silently dropped keys)', async () => {
    const id = deviceId('A6');
    const unknown = await server.post('/ws/v1/devices/inventory', { id, colour: 'red' }, { auth: alice });
    expectError(unknown, 400);
    expect(unknown.body.error_message).toContain('colour');
    expect((await server.post('/ws/v1/devices/inventory', { id }, { auth: alice })).status).toBe(201);
    const base = { job_type: 'reboot', targets: { devices: [id] } };
    expectError(await server.post('/ws/v1/jobs/inventory', { ...base, priority: 1 }, { auth: alice }), 400);
    expectError(
      await server.post(
        '/ws/v1/jobs/inventory',
        { ...base, targets: { devices: [id], everyone: true } },
        { auth: alice },
      ),
      400,
    );
    expectError(await server.put(`/ws/v1/devices/inventory/${id}`, { colour: 'red' }, { auth: alice }), 400);
  });

  it('an unknown job_type is 400', async () => {
    const id = deviceId('A7');
    expect((await server.post('/ws/v1/devices/inventory', { id }, { auth: alice })).status).toBe(201);
    expectError(
      await server.post(
        '/ws/v1/jobs/inventory',
        { job_type: 'explode', targets: { devices: [id] } },
        { auth: alice },
      ),
      400,
    );
  });
});

describe('§2 two accounts never see each other', () => {
  it('another account’s job and device answer 404 everywhere, lists and counts never include them', async () => {
    const id = deviceId('A8');
    expect(
      (await server.post('/ws/v1/devices/inventory', { id, name: 'secret' }, { auth: alice })).status,
    ).toBe(201);
    const job = await server.post(
      '/ws/v1/jobs/inventory',
      { job_type: 'reboot', description: 'alice-only', targets: { devices: [id] } },
      { auth: alice },
    );
    expect(job.status).toBe(201);
    const jobId = job.body.id as number;
    const missingJob = 999_999;

    for (const path of [
      `/ws/v1/jobs/${jobId}`,
      `/ws/v1/jobs/inventory/${jobId}`,
      `/ws/v1/jobs/${jobId}/targets`,
    ]) {
      const theirs = await server.get(path, { auth: bob });
      const none = await server.get(path.replace(String(jobId), String(missingJob)), { auth: bob });
      expectError(theirs, 404);
      expectError(none, 404);
    }
    expectError(await server.get(`/ws/v1/jobs/${jobId}/targets/bulk`, { auth: bob }), 404);
    expectError(await server.put(`/ws/v1/jobs/cancel/${jobId}`, undefined, { auth: bob }), 404);
    expectError(await server.put(`/ws/v1/jobs/cancel${jobId}`, undefined, { auth: bob }), 404);
    expectError(await server.del(`/ws/v1/jobs/inventory/${jobId}`, { auth: bob }), 404);
    expectError(await server.get(`/ws/v1/devices/inventory/${id}`, { auth: bob }), 404);
    expectError(await server.put(`/ws/v1/devices/inventory/${id}`, { name: 'mine' }, { auth: bob }), 404);
    expectError(await server.post(`/ws/v1/devices/inventory/${id}/token`, {}, { auth: bob }), 404);
    expectError(await server.del(`/ws/v1/devices/inventory/${id}`, { auth: bob }), 404);
    // a job naming another account's device: unknown device
    expectError(
      await server.post(
        '/ws/v1/jobs/inventory',
        { job_type: 'reboot', targets: { devices: [id] } },
        { auth: bob },
      ),
      400,
    );
    // a device id that exists in any account: 409
    expectError(await server.post('/ws/v1/devices/inventory', { id }, { auth: bob }), 409);

    const jobs = await server.get('/ws/v1/jobs/inventory', { auth: bob });
    expect(jobs.body.count).toBe(0);
    expect(jobs.body.list).toEqual([]);
    const devices = await server.get('/ws/v1/devices/inventory', { auth: bob });
    expect(devices.body.count).toBe(0);
    const all = await server.post(
      '/ws/v1/jobs/inventory',
      { job_type: 'reboot', targets: { all: true } },
      { auth: bob },
    );
    expectError(all, 400); // bob has no device at all
    const csv = await server.get('/ws/v1/jobs/bulk', { auth: bob });
    expect(csv.text.trim().split(/\r\n/)).toHaveLength(1);
    expect(csv.text).not.toContain('alice-only');
    const devCsv = await server.get('/ws/v1/devices/bulk', { auth: bob });
    expect(devCsv.text).not.toContain(id);
    const xml = await server.get('/ws/v1/jobs/inventory.xml', { auth: bob });
    expect(xml.text).toContain('<count>0</count>');

    const byQuery = await server.put(`/ws/v1/jobs/inventory/cancel?query=${q('id > 0')}`, undefined, {
      auth: bob,
    });
    expect(byQuery.status).toBe(200);
    expect(byQuery.body).toEqual({ count: 0, skipped: 0 });
    const byQueryDelete = await server.del(`/ws/v1/jobs/cancel?query=${q('id > 0')}`, { auth: bob });
    expect(byQueryDelete.body).toEqual({ count: 0, skipped: 0 });

    // several ids, all another account's: one 404
    expectError(await server.put(`/ws/v1/jobs/cancel/${jobId},${missingJob}`, undefined, { auth: bob }), 404);

    // alice's job is untouched
    const mine = await server.get(`/ws/v1/jobs/${jobId}`, { auth: alice });
    expect(['new', 'in_progress']).toContain(mine.body.job_status);
    const dev = await server.get(`/ws/v1/devices/inventory/${id}`, { auth: alice });
    expect(dev.body.name).toBe('secret');
  });

  it('job selectors (all, groups, tags, query) never reach another account’s devices', async () => {
    const bobDevice = deviceId('A9');
    await server.post(
      '/ws/v1/devices/inventory',
      { id: bobDevice, name: 'secret', group: '/G', tags: ['t'] },
      { auth: bob },
    );
    const id = deviceId('A9');
    await server.post(
      '/ws/v1/devices/inventory',
      { id, name: 'secret', group: '/G', tags: ['t'] },
      { auth: alice },
    );
    for (const targets of [
      { all: true },
      { groups: ['/G'] },
      { tags: ['t'] },
      { query: "name = 'secret'" },
    ]) {
      const j = await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets }, { auth: bob });
      expect(j.status, JSON.stringify(targets)).toBe(201);
      expect(j.body.target_count).toBe(1);
      const t = await server.get(`/ws/v1/jobs/${j.body.id}/targets`, { auth: bob });
      expect(t.body.list.map((x: { device_id: string }) => x.device_id)).toEqual([bobDevice]);
      await server.put(`/ws/v1/jobs/cancel/${j.body.id}`, undefined, { auth: bob });
    }
    const bobJobsByDevice = await server.get(`/ws/v1/jobs/inventory?query=${q(`device.id = '${id}'`)}`, {
      auth: bob,
    });
    expect(bobJobsByDevice.body.count).toBe(0);
  });
});
