import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setConnection } from '../setup/presence.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

describe('POST /ws/v1/jobs/preview', () => {
  let h: Harness;
  let bob: Caller;
  let mallory: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    mallory = await h.user('globex', 'mallory');
    await h.devices(bob, 1200, (n) => ({
      group: n <= 3 ? '/NorthWest/Seattle' : '/South',
      tags: n % 100 === 0 ? ['hundred'] : [],
    }));
    await h.devices(mallory, 2, () => ({ group: '/NorthWest' }), 1);
    for (const n of [2, 3]) await setConnection(h.store, deviceId(n), 'connected', Date.now());
  });
  afterAll(() => h.close());

  const jobCount = async () => (await h.get(bob, '/ws/v1/jobs/inventory')).json().count as number;

  it('answers the targets a create body resolves to, with how many are offline, and creates nothing', async () => {
    const response = await h.post(bob, '/ws/v1/jobs/preview', {
      job_type: 'reboot',
      targets: { groups: ['/northwest'], tags: ['hundred'], devices: [deviceId(1200).toLowerCase()] },
    });
    expect(response.statusCode, response.body).toBe(200);
    const hundreds = Array.from({ length: 12 }, (_, index) => deviceId((index + 1) * 100));
    expect(response.json()).toEqual({
      target_count: 15,
      list: [deviceId(1), deviceId(2), deviceId(3), ...hundreds].sort(),
      offline: 13,
    });
    expect(await jobCount()).toBe(0);
  });

  it('lists the first 1000 ids in ascending order and counts them all', async () => {
    const response = await h.post(bob, '/ws/v1/jobs/preview', { job_type: 'reboot', targets: { all: true } });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json();
    expect(body.target_count).toBe(1200);
    expect(body.offline).toBe(1198);
    expect(body.list).toEqual(Array.from({ length: 1000 }, (_, index) => deviceId(index + 1)));
  });

  it('resolves a device query, in the caller account only', async () => {
    const response = await h.post(mallory, '/ws/v1/jobs/preview', {
      job_type: 'reboot',
      targets: { query: "group startsWith '/NorthWest'" },
    });
    expect(response.json()).toEqual({
      target_count: 2,
      list: [deviceId(1, 1), deviceId(2, 1)],
      offline: 2,
    });
  });

  it('refuses what a creation refuses, with the same errors', async () => {
    const bodies: unknown[] = [
      { job_type: 'reboot', targets: { groups: ['/Nowhere'] } },
      { job_type: 'reboot', targets: { devices: [deviceId(1, 1)] } },
      { job_type: 'reboot', targets: {} },
      { job_type: 'reboot', targets: { query: 'group = ' } },
      { job_type: 'dance', targets: { all: true } },
      { job_type: 'reboot', targets: { all: true }, timeout: 0 },
      { job_type: 'reboot', targets: { all: true }, surprise: 1 },
      { job_type: 'reboot', targets: { all: true }, payload: 'x'.repeat(70_000) },
    ];
    for (const body of bodies) {
      const created = expectError(await h.post(bob, '/ws/v1/jobs/inventory', body), 400);
      expect(expectError(await h.post(bob, '/ws/v1/jobs/preview', body), 400)).toBe(created);
    }
    expect(await jobCount()).toBe(0);
  });

  it('needs credentials, and a role that may write (read_only users may only GET)', async () => {
    expectError(
      await h.post(null, '/ws/v1/jobs/preview', { job_type: 'reboot', targets: { all: true } }),
      401,
    );
    const reader = await h.user('acme', 'reader', 'read_only');
    expectError(
      await h.post(reader, '/ws/v1/jobs/preview', { job_type: 'reboot', targets: { all: true } }),
      403,
    );
  });
});
