import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, type Caller, expectError, Harness, PASSWORD } from './harness.js';

describe('authentication and roles', () => {
  let h: Harness;
  let alice: Caller;
  let reader: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    alice = await h.user('acme', 'alice', 'admin');
    reader = await h.user('acme', 'reader', 'read_only');
  });
  afterAll(() => h.close());

  it('GET /healthz answers 200 without credentials', async () => {
    const response = await h.get(null, '/healthz');
    expect(response.statusCode).toBe(200);
  });

  it('GET /readyz answers 200 without credentials when the store answers', async () => {
    const response = await h.get(null, '/readyz');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready' });
  });

  it.each([
    ['no credentials', {}],
    ['a wrong password', basic('alice', 'wrong')],
    ['an unknown user', basic('nobody', PASSWORD)],
    ['a malformed Basic header', { authorization: 'Basic !!!' }],
    ['another scheme', { authorization: 'Bearer abc' }],
    ['an unknown API key', { 'x-api-key-id': 'nope', 'x-api-key-secret': 'nope' }],
    ['an API key id without its secret', { 'x-api-key-id': 'nope' }],
  ])('%s is 401 with the error body and a Basic challenge', async (_name, headers) => {
    const response = await h.get(null, '/ws/v1/jobs/inventory', headers as Record<string, string>);
    expectError(response, 401);
    expect(response.headers['www-authenticate']).toBe('Basic realm="fleetjobs"');
  });

  it('every route under /ws/ asks for credentials, also writes', async () => {
    expectError(
      await h.post(null, '/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { all: true } }),
      401,
    );
    expectError(await h.put(null, '/ws/v1/jobs/cancel/1'), 401);
    expectError(await h.delete(null, '/ws/v1/devices/inventory/00000000-00000000-00000000-00000001'), 401);
    expectError(await h.get(null, '/ws/v1/devices/bulk'), 401);
  });

  it('Basic credentials work, repeatedly', async () => {
    for (let i = 0; i < 3; i++) expect((await h.get(alice, '/ws/v1/jobs')).statusCode).toBe(200);
  });

  it('an API key works with its id and secret, and stops working once revoked', async () => {
    const key = await h.apiKey('alice');
    const headers = { 'x-api-key-id': key.id, 'x-api-key-secret': key.secret };
    expect((await h.get(null, '/ws/v1/jobs/inventory', headers)).statusCode).toBe(200);
    expectError(
      await h.get(null, '/ws/v1/jobs/inventory', { ...headers, 'x-api-key-secret': `${key.secret}x` }),
      401,
    );
    expect(await h.store.revokeApiKey(key.id)).toBe(true);
    expectError(await h.get(null, '/ws/v1/jobs/inventory', headers), 401);
  });

  it('a removed user, or one added again with another password, is refused at once', async () => {
    const carol = await h.user('acme', 'carol', 'user', 'first password');
    expect((await h.get(carol, '/ws/v1/jobs')).statusCode).toBe(200);
    await h.store.removeUser('carol');
    expectError(await h.get(carol, '/ws/v1/jobs'), 401);
    await h.user('acme', 'carol', 'user', 'second password');
    expectError(await h.get(carol, '/ws/v1/jobs'), 401);
    expect((await h.get(null, '/ws/v1/jobs', basic('carol', 'second password'))).statusCode).toBe(200);
  });

  it('read_only may GET but every write is 403 and changes nothing', async () => {
    expect((await h.get(reader, '/ws/v1/jobs/inventory')).statusCode).toBe(200);
    expect((await h.get(reader, '/ws/v1/devices/inventory')).statusCode).toBe(200);
    expectError(
      await h.post(reader, '/ws/v1/devices/inventory', { id: '00000000-00000000-00000000-000000AA' }),
      403,
    );
    expectError(await h.put(reader, '/ws/v1/jobs/inventory/cancel?query=id%20%3E%200'), 403);
    expectError(await h.delete(reader, '/ws/v1/jobs/inventory?query=id%20%3E%200'), 403);
    const devices = await h.get(alice, '/ws/v1/devices/inventory');
    expect(devices.json().count).toBe(0);
  });

  it('an unknown route is 404 with the error body', async () => {
    expectError(await h.get(alice, '/ws/v1/nothing'), 404);
    expectError(await h.get(null, '/nothing'), 404);
    expectError(await h.get(alice, '/ws/v1/jobs/1/nothing'), 404);
  });

  it('a URL that does not decode is 400 with the error body', async () => {
    expect(expectError(await h.get(alice, '/ws/v1/jobs/%ZZ'), 400)).toMatch(/URL/);
  });
});
