import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JobService, type JobServiceEvents } from '../../src/jobs/service.js';
import { parseQuery } from '../../src/query/index.js';
import { verifyDeviceToken } from '../../src/security/hashing.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { CancelNotice, Store } from '../../src/store/store.js';
import { expectAppError } from '../helpers.js';
import { setConnection } from '../setup/presence.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-service-'));
let databases = 0;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const id = (n: number) => `00000000-00000000-0004F3FF-${n.toString(16).toUpperCase().padStart(8, '0')}`;

describe('JobService', () => {
  let store: Store;
  let service: JobService;
  let account: number;
  let other: number;
  let clock: number;
  const events: { name: keyof JobServiceEvents; args: unknown[] }[] = [];

  beforeEach(async () => {
    store = await openSqliteStore(join(folder, `db-${++databases}`, 'fleetjobs.db'));
    clock = Date.UTC(2026, 10, 28, 17, 40);
    service = new JobService(store, () => clock);
    account = (await store.ensureAccount('acme', clock)).id;
    other = (await store.ensureAccount('other', clock)).id;
    events.length = 0;
    for (const name of ['job-created', 'jobs-canceled', 'device-removed', 'device-token-changed'] as const) {
      service.on(name, (...args: unknown[]) => events.push({ name, args }));
    }
  });
  afterEach(() => store.close());

  const tokenHash = async (deviceId: string) =>
    (await store.findDeviceCredentials(deviceId))?.token_hash ?? '';

  describe('devices', () => {
    it('creates devices with normalized ids, groups and tags, and a token shown once', async () => {
      const [device] = await service.createDevices(account, [
        { id: id(1).toLowerCase(), group: 'NorthWest/Seattle/', tags: ['a', 'b', 'a'] },
      ]);
      expect(device).toMatchObject({
        id: id(1),
        group: '/NorthWest/Seattle',
        tags: ['a', 'b'],
        customer_id: account,
      });
      expect(device?.device_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(verifyDeviceToken(device?.device_token ?? '', await tokenHash(id(1)))).toBe(true);
      expect(await store.getDevice(account, id(1))).not.toHaveProperty('device_token');
    });

    it('keeps a token given by the factory, and rejects one that is not 16–128 printable ASCII characters', async () => {
      const given = 'factory-token-0123456789';
      const [device] = await service.createDevices(account, [{ id: id(1), device_token: given }]);
      expect(device?.device_token).toBe(given);
      expect(verifyDeviceToken(given, await tokenHash(id(1)))).toBe(true);
      for (const bad of [
        'short',
        'x'.repeat(129),
        'tab\there-and-long-enough',
        'ünïcödé-long-enough-token',
      ]) {
        await expectAppError(
          service.createDevices(account, [{ id: id(2), device_token: bad }]),
          400,
          /device_token/,
        );
      }
      expect(await store.getDevice(account, id(2))).toBeUndefined();
    });

    it('rejects a bad id, a bad value, too many devices, and an id given twice or taken, creating nothing', async () => {
      await expectAppError(
        service.createDevices(account, [{ id: id(1) }, { id: 'not-an-id' }]),
        400,
        /not-an-id.*device 2/,
      );
      await expectAppError(
        service.createDevices(account, [{ id: id(1), signal_percent: 101 }]),
        400,
        /signal_percent/,
      );
      await expectAppError(service.createDevices(account, [{ id: id(1), tags: [''] }]), 400, /tag/);
      const many = Array.from({ length: 10_001 }, (_, n) => ({ id: id(n) }));
      await expectAppError(service.createDevices(account, many), 400, /10000/);
      await expectAppError(
        service.createDevices(account, [{ id: id(1) }, { id: id(1).toLowerCase() }]),
        409,
        new RegExp(id(1)),
      );
      await service.createDevices(other, [{ id: id(9) }]);
      await expectAppError(
        service.createDevices(account, [{ id: id(1) }, { id: id(9) }]),
        409,
        new RegExp(id(9)),
      );
      expect(await store.getDevice(account, id(1))).toBeUndefined();
    });

    it('creates 10,000 devices in one call', async () => {
      const created = await service.createDevices(
        account,
        Array.from({ length: 10_000 }, (_, n) => ({ id: id(n) })),
      );
      expect(created).toHaveLength(10_000);
      expect(new Set(created.map((device) => device.device_token)).size).toBe(10_000);
    });

    it('updates a device of the account only', async () => {
      await service.createDevices(account, [{ id: id(1), name: 'a' }]);
      expect(await service.updateDevice(account, id(1).toLowerCase(), { group: 'x/y/' })).toMatchObject({
        name: 'a',
        group: '/x/y',
      });
      await expectAppError(service.updateDevice(other, id(1), { name: 'b' }), 404);
      await expectAppError(service.updateDevice(account, id(1), { signal_percent2: -1 }), 400);
    });

    it('deletes a device and tells the dispatcher; a foreign or unknown one is 404 and nothing is told', async () => {
      await service.createDevices(account, [{ id: id(1) }]);
      await expectAppError(service.deleteDevice(other, id(1)), 404);
      expect(events).toEqual([]);
      await service.deleteDevice(account, id(1).toLowerCase());
      expect(events).toEqual([{ name: 'device-removed', args: [id(1)] }]);
      await expectAppError(service.deleteDevice(account, id(1)), 404);
    });

    it('replaces a token: the old one stops working and the dispatcher hears of it', async () => {
      const [device] = await service.createDevices(account, [{ id: id(1) }]);
      const replaced = await service.replaceDeviceToken(account, id(1));
      expect(replaced.id).toBe(id(1));
      expect(replaced.device_token).not.toBe(device?.device_token);
      const hash = await tokenHash(id(1));
      expect(verifyDeviceToken(replaced.device_token, hash)).toBe(true);
      expect(verifyDeviceToken(device?.device_token ?? '', hash)).toBe(false);
      const chosen = await service.replaceDeviceToken(account, id(1), 'my-own-token-of-length');
      expect(chosen.device_token).toBe('my-own-token-of-length');
      expect(events.map((event) => event.name)).toEqual(['device-token-changed', 'device-token-changed']);
      await expectAppError(service.replaceDeviceToken(account, id(1), 'short'), 400);
      await expectAppError(service.replaceDeviceToken(other, id(1)), 404);
      expect(events).toHaveLength(2);
    });
  });

  describe('jobs', () => {
    beforeEach(async () => {
      await service.createDevices(account, [
        { id: id(1), group: '/NorthWest', tags: ['sensor'] },
        { id: id(2), group: '/NorthWest/Seattle' },
        { id: id(3), group: '/NorthWestern' },
      ]);
      events.length = 0;
    });

    it('creates a job with defaults, keeps the selector as submitted, and announces it', async () => {
      const job = await service.createJob(account, 'alice', {
        job_type: 'reboot',
        targets: { devices: [id(1).toLowerCase()], groups: ['NorthWest/Seattle/'] },
      });
      expect(job).toMatchObject({
        customer_id: account,
        username: 'alice',
        job_status: 'new',
        description: null,
        job_submit_time: clock,
        target_count: 2,
        progress_pending: 2,
        payload: null,
        timeout: 600,
        offline_timeout: 86_400,
        targets: { devices: [id(1).toLowerCase()], groups: ['NorthWest/Seattle/'] },
      });
      expect(events).toEqual([{ name: 'job-created', args: [job] }]);
    });

    it('targets a group with its subgroups but not a look-alike', async () => {
      const job = await service.createJob(account, 'alice', {
        job_type: 'command',
        targets: { groups: ['/NorthWest'] },
      });
      expect(job.target_count).toBe(2);
    });

    it('rejects a bad job: type, selector, query, payload, timeouts, unknown device, no target', async () => {
      const create = (input: object) =>
        service.createJob(account, 'alice', {
          job_type: 'reboot',
          targets: { all: true },
          ...input,
        } as never);
      await expectAppError(create({ job_type: 'explode' }), 400, /job_type/);
      await expectAppError(create({ targets: {} }), 400, /at least one/);
      await expectAppError(create({ targets: { devices: 'x' } }), 400, /targets.devices/);
      await expectAppError(create({ targets: { groups: [1] } }), 400, /targets.groups/);
      await expectAppError(create({ targets: { groups: ['/'] } }), 400, /group/);
      await expectAppError(create({ targets: { query: ' ' } }), 400, /empty/);
      await expectAppError(create({ targets: { query: 'name equals 1' } }), 400, /position 6/);
      await expectAppError(create({ payload: 'x'.repeat(64 * 1024) }), 400, /payload/);
      const nested = (depth: number): unknown => {
        let value: unknown = 1;
        for (let level = 0; level < depth; level++) value = [value];
        return value;
      };
      await expectAppError(create({ payload: nested(20_000) }), 400, /payload.*nested/);
      await expectAppError(create({ timeout: 0 }), 400, /timeout/);
      await expectAppError(create({ timeout: 1.5 }), 400, /timeout/);
      await expectAppError(create({ offline_timeout: -5 }), 400, /offline_timeout/);
      await expectAppError(create({ targets: { devices: [id(1), id(77)] } }), 400, new RegExp(id(77)));
      await expectAppError(create({ targets: { devices: ['nonsense'] } }), 400, /nonsense/);
      await expectAppError(create({ targets: { tags: ['nothing-has-it'] } }), 400);
      await expectAppError(create({ targets: { all: false } }), 400);
      expect(events).toEqual([]);
      // The largest payload allowed: 64 KiB of JSON.
      const job = await create({ payload: 'x'.repeat(64 * 1024 - 2), timeout: 5, offline_timeout: 7 });
      expect(job).toMatchObject({ timeout: 5, offline_timeout: 7 });
      // Nesting up to 512 levels deep is fine.
      expect((await create({ payload: nested(511) })).payload).toEqual(nested(511));
    });

    it('targets a device query', async () => {
      const job = await service.createJob(account, 'alice', {
        job_type: 'reboot',
        targets: { query: "group startsWith '/NorthWest'", tags: ['sensor'] },
      });
      expect(job.target_count).toBe(3);
    });

    it('cancels and tells the dispatcher about in-progress targets only', async () => {
      const quiet = await service.createJob(account, 'alice', { job_type: 'reboot', targets: { all: true } });
      const results = await service.cancelJobs(account, [quiet.id, 999], false);
      expect(results).toEqual([
        {
          id: quiet.id,
          ok: true,
          value: expect.objectContaining({ job_status: 'canceled', progress_canceled: 3 }),
        },
        { id: 999, ok: false, status: 404, message: 'Job 999 not found' },
      ]);
      expect(events.filter((event) => event.name === 'jobs-canceled')).toEqual([]);

      const busy = await service.createJob(account, 'alice', { job_type: 'reboot', targets: { all: true } });
      await setConnection(store, id(2), 'connected', clock);
      await store.startNewJobs({ node: 'test', now: clock, expires: clock });
      await store.takeRequests(id(2), clock, 10, 0);
      const query = parseQuery(`id = ${busy.id}`, 'jobs');
      if (!query) throw new Error('no query');
      expect(await service.cancelJobsByQuery(account, query, true)).toEqual({ count: 1, skipped: 0 });
      const notices: CancelNotice[] = [{ job_id: busy.id, device_id: id(2), force: true }];
      expect(events.filter((event) => event.name === 'jobs-canceled')).toEqual([
        { name: 'jobs-canceled', args: [notices] },
      ]);

      expect(await service.deleteJobs(account, [quiet.id, busy.id])).toEqual([
        { id: quiet.id, ok: true, value: quiet.id },
        { id: busy.id, ok: true, value: busy.id },
      ]);
      const all = parseQuery('id > 0', 'jobs');
      if (!all) throw new Error('no query');
      expect(await service.deleteJobsByQuery(account, all)).toEqual({ count: 0, skipped: 0 });
    });
  });
});
