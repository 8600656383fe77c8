import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { csvField, isoTime, valueText } from '../../src/model/csv.js';
import type { Device, DeviceInput } from '../../src/model/device.js';
import {
  JOB_LIST_FIELDS,
  type Job,
  type JobField,
  type JobTarget,
  progressBucket,
} from '../../src/model/job.js';
import { NO_CONTROLS } from '../../src/model/rollout.js';
import { parseQuery } from '../../src/query/index.js';
import { CREATE_DEVICES_SLICE } from '../../src/store/sql/devices.js';
import { CANCEL_SLICE, CREATE_SLICE } from '../../src/store/sql/jobs.js';
import type { CsvRecords, DeviceSelection, Keyset, NewJob, Order, Store } from '../../src/store/store.js';
import { expectAppError } from '../helpers.js';
import { device as deviceWith } from '../query/fixtures.js';
import { setConnection } from '../setup/presence.js';

/**
 * The behaviour every store must have, run against each implementation (SQLite now, PostgreSQL
 * later). `openStore` gives a fresh, empty store each time.
 */
export function storeSuite(name: string, openStore: () => Promise<Store>): void {
  describe(`${name} store`, () => {
    let store: Store;
    let alpha: number;
    let beta: number;
    let clock: number;
    const tick = () => ++clock;
    /** The claim of a node that fans new jobs out. */
    const claim = () => ({ node: 'node-a', now: tick(), expires: clock + 5_000 });

    beforeEach(async () => {
      store = await openStore();
      clock = Date.UTC(2026, 10, 28, 17, 40);
      alpha = (await store.ensureAccount('alpha', tick())).id;
      beta = (await store.ensureAccount('beta', tick())).id;
    });
    afterEach(async () => {
      await store.close();
    });

    // ---- helpers ----

    /** Device ids per account and number: `0000000A-00000000-00000000-0000002A`. */
    const deviceId = (account: number, n: number) =>
      `${account.toString(16).padStart(8, '0')}-00000000-00000000-${n.toString(16).toUpperCase().padStart(8, '0')}`.toUpperCase();

    const addDevices = (account: number, devices: (DeviceInput & { n: number })[]) =>
      store.createDevices(
        account,
        devices.map(({ n, ...input }) => ({ ...input, id: deviceId(account, n), token_hash: `hash-${n}` })),
      );

    /**
     * `run`'s result, and how many turns of the event loop ran while it did (a statement of SQLite
     * runs on the event loop: none between them, none counted).
     */
    async function withTurns<T>(run: () => Promise<T>): Promise<{ result: T; turns: number }> {
      let turns = 0;
      let turn = setImmediate(function count() {
        turns++;
        turn = setImmediate(count);
      });
      try {
        const result = await run();
        return { result, turns };
      } finally {
        clearImmediate(turn);
      }
    }

    const newJob = (
      account: number,
      selection: Partial<DeviceSelection>,
      extra: Partial<NewJob> = {},
    ): NewJob => ({
      accountId: account,
      username: 'alice',
      job_type: 'reboot',
      description: null,
      targets: {
        devices: selection.devices,
        groups: selection.groups,
        tags: selection.tags,
        all: selection.all,
      },
      selection: { devices: [], groups: [], tags: [], query: null, all: false, ...selection },
      payload: null,
      timeout: 600,
      offline_timeout: 86_400,
      controls: NO_CONTROLS,
      rollout_state: 'running',
      now: tick(),
      ...extra,
    });

    const deviceQuery = (text: string) => parseQuery(text, 'devices');
    const jobQuery = (text: string) => {
      const query = parseQuery(text, 'jobs');
      if (query === null) throw new Error('empty query');
      return query;
    };

    async function collect<T>(stream: AsyncIterable<T[]>): Promise<T[]> {
      const items: T[] = [];
      for await (const batch of stream) items.push(...batch);
      return items;
    }

    /** A CSV export's records as one text (a batch as text or as UTF-8, by engine). */
    async function exportText(records: CsvRecords): Promise<string> {
      const batches: Buffer[] = [];
      for await (const batch of records) batches.push(Buffer.from(batch));
      return Buffer.concat(batches).toString();
    }

    /** The ids a CSV export of the `id` field alone writes, in its order. */
    async function exportedIds(records: CsvRecords): Promise<string[]> {
      return (await exportText(records)).split('\r\n').filter((line) => line !== '');
    }
    const idsOnly = { fields: ['id'], timestamps: new Set<string>() };

    const allTargets = (account: number, jobId: number) =>
      collect(
        store.streamTargets(jobId, {
          accountId: account,
          query: null,
          order: { field: 'device_id', direction: 'asc' },
        }),
      );

    /** The job's counts agree with a recount of its targets. */
    async function expectCountsAgree(account: number, jobId: number): Promise<Job> {
      const job = await store.getJob(account, jobId);
      if (!job) throw new Error(`job ${jobId} is gone`);
      const counts = { progress_success: 0, progress_failures: 0, progress_canceled: 0, progress_pending: 0 };
      const targets = await allTargets(account, jobId);
      for (const target of targets) counts[progressBucket(target.status)]++;
      expect({
        target_count: job.target_count,
        progress_success: job.progress_success,
        progress_failures: job.progress_failures,
        progress_canceled: job.progress_canceled,
        progress_pending: job.progress_pending,
      }).toEqual({ target_count: targets.length, ...counts });
      return job;
    }

    const targetIds = async (account: number, jobId: number) =>
      (await allTargets(account, jobId)).map((target) => target.device_id);

    /** Makes the device's queued targets in progress, as the dispatcher does when it connects. */
    async function startTargets(id: string): Promise<void> {
      await setConnection(store, id, 'connected', tick());
      await store.startNewJobs(claim());
      await store.takeRequests(id, tick(), 1000, 0);
    }

    // ---- settings, accounts, users, keys ----

    describe('accounts, users and keys', () => {
      it('keeps a named secret', async () => {
        const first = await store.secret('cursor');
        expect(first.length).toBeGreaterThanOrEqual(32);
        expect(await store.secret('cursor')).toEqual(first);
        expect(await store.secret('other')).not.toEqual(first);
      });

      it('creates an account once', async () => {
        expect(await store.ensureAccount('alpha', tick())).toEqual({ id: alpha, name: 'alpha' });
      });

      it('creates, finds, lists and removes users; a taken username is 409', async () => {
        expect(await store.countUsers()).toBe(0);
        const now = tick();
        const alice = await store.createUser({
          accountId: alpha,
          username: 'alice',
          passwordHash: 'h1',
          role: 'admin',
          now,
        });
        expect(alice).toEqual({
          id: alice.id,
          username: 'alice',
          role: 'admin',
          account_id: alpha,
          account_name: 'alpha',
          created_at: now,
        });
        await store.createUser({
          accountId: beta,
          username: 'bob',
          passwordHash: 'h2',
          role: 'read_only',
          now: tick(),
        });
        await expectAppError(
          store.createUser({
            accountId: beta,
            username: 'alice',
            passwordHash: 'h3',
            role: 'user',
            now: tick(),
          }),
          409,
          /alice/,
        );
        expect(await store.findUser('alice')).toEqual({ ...alice, password_hash: 'h1' });
        expect(await store.findUser('nobody')).toBeUndefined();
        expect((await store.listUsers()).map((user) => user.username)).toEqual(['alice', 'bob']);
        expect((await store.listUsers('beta')).map((user) => user.username)).toEqual(['bob']);
        expect(await store.countUsers()).toBe(2);
        expect(await store.removeUser('alice')).toBe(true);
        expect(await store.removeUser('alice')).toBe(false);
        expect(await store.countUsers()).toBe(1);
      });

      it('creates, finds, lists and revokes API keys; removing a user revokes its keys', async () => {
        const alice = await store.createUser({
          accountId: alpha,
          username: 'alice',
          passwordHash: 'h',
          role: 'user',
          now: tick(),
        });
        const now = tick();
        expect(await store.createApiKey({ id: 'k1', userId: alice.id, secretHash: 's1', now })).toEqual({
          id: 'k1',
          username: 'alice',
          created_at: now,
        });
        await store.createApiKey({ id: 'k2', userId: alice.id, secretHash: 's2', now: tick() });
        expect(await store.findApiKey('k1')).toEqual({ id: 'k1', secret_hash: 's1', user: alice });
        expect((await store.listApiKeys('alice')).map((key) => key.id)).toEqual(['k1', 'k2']);
        expect(await store.revokeApiKey('k1')).toBe(true);
        expect(await store.revokeApiKey('k1')).toBe(false);
        expect(await store.findApiKey('k1')).toBeUndefined();
        await store.removeUser('alice');
        expect(await store.findApiKey('k2')).toBeUndefined();
      });
    });

    // ---- devices ----

    describe('devices', () => {
      it('creates devices with defaults and reads them back', async () => {
        const [device] = await addDevices(alpha, [
          {
            n: 1,
            name: 'pump',
            group: '/NorthWest/Seattle',
            tags: ['sensor', 'important'],
            signal_percent: 55,
          },
        ]);
        const expected = deviceWith({
          id: deviceId(alpha, 1),
          customer_id: alpha,
          name: 'pump',
          group: '/NorthWest/Seattle',
          tags: ['sensor', 'important'],
          signal_percent: 55,
        });
        expect(device).toEqual(expected);
        expect(await store.getDevice(alpha, deviceId(alpha, 1))).toEqual(expected);
        expect(await store.findDeviceCredentials(deviceId(alpha, 1))).toEqual({
          id: deviceId(alpha, 1),
          customer_id: alpha,
          token_hash: 'hash-1',
        });
      });

      it('creates a batch in one transaction: an existing id anywhere is 409 and nothing is created', async () => {
        await addDevices(beta, [{ n: 7 }]);
        const taken = deviceId(beta, 7);
        const batch = [1, 2, 3].map((n) => ({ id: deviceId(alpha, n), token_hash: 'h' }));
        await expectAppError(
          store.createDevices(alpha, [...batch, { id: taken, token_hash: 'h' }]),
          409,
          new RegExp(taken),
        );
        const page = await store.listDevices({
          accountId: alpha,
          query: null,
          order: { field: 'id', direction: 'asc' },
          after: null,
          limit: 10,
        });
        expect(page).toEqual([]);
        expect((await store.createDevices(alpha, batch)).map((device) => device.id)).toEqual(
          batch.map((device) => device.id),
        );
      });

      it('creates a batch of more devices than one statement adds in one transaction, the event loop running between the statements', async () => {
        await addDevices(beta, [{ n: 7 }]);
        const taken = deviceId(beta, 7);
        const batch = Array.from({ length: 2 * CREATE_DEVICES_SLICE + 3 }, (_, index) => ({
          id: deviceId(alpha, 1000 - index),
          token_hash: 'h',
          tags: index % 2 === 0 ? ['even'] : [],
        }));
        // Taken in the last statement's devices: nothing of the earlier ones stays.
        await expectAppError(store.createDevices(alpha, [...batch, { id: taken, token_hash: 'h' }]), 409);
        const everything = {
          accountId: alpha,
          order: { field: 'id', direction: 'asc' },
          after: null,
          limit: 10_000,
        } as const;
        expect(await store.listDevices({ ...everything, query: null })).toEqual([]);
        const events = await store.listEvents({ accountId: alpha, afterId: 0, limit: 100_000 });
        const { result: created, turns } = await withTurns(() => store.createDevices(alpha, batch));
        expect(turns).toBeGreaterThanOrEqual(2);
        expect(created.map((device) => device.id)).toEqual(batch.map((device) => device.id));
        const even = await store.listDevices({ ...everything, query: deviceQuery("tags = 'even'") });
        expect(even).toHaveLength(CREATE_DEVICES_SLICE + 2);
        const inserted = (
          await store.listEvents({ accountId: alpha, afterId: events.at(-1)?.id ?? 0, limit: 100_000 })
        ).map((event) => `${event.operation} ${event.object_key}`);
        expect(inserted).toEqual(batch.map((device) => `INSERTION ${device.id}`));
      });

      it('updates the given fields only, and tags as a whole', async () => {
        await addDevices(alpha, [{ n: 1, name: 'a', description: 'd', tags: ['x', 'y'] }]);
        const updated = await store.updateDevice(alpha, deviceId(alpha, 1), {
          name: 'b',
          tags: ['z'],
          group: '/g',
        });
        expect(updated).toMatchObject({ name: 'b', description: 'd', tags: ['z'], group: '/g' });
        expect(await store.getDevice(alpha, deviceId(alpha, 1))).toEqual(updated);
        expect(await store.updateDevice(alpha, deviceId(alpha, 2), { name: 'c' })).toBeUndefined();
      });

      it('replaces a token hash', async () => {
        await addDevices(alpha, [{ n: 1 }]);
        expect(await store.setDeviceToken(alpha, deviceId(alpha, 1), 'new-hash')).toBe(true);
        expect((await store.findDeviceCredentials(deviceId(alpha, 1)))?.token_hash).toBe('new-hash');
        expect(await store.setDeviceToken(alpha, deviceId(alpha, 2), 'x')).toBe(false);
      });

      for (const direction of ['asc', 'desc'] as const) {
        it(`lists devices by a field with missing values, ${direction}, with keyset paging, and streams them`, async () => {
          await addDevices(
            alpha,
            Array.from({ length: 30 }, (_, i) => ({ n: i + 1, name: i % 3 === 0 ? null : `n${i % 7}` })),
          );
          const order: Order = { field: 'name', direction };
          const seen: Device[] = [];
          let after: Keyset | null = null;
          for (;;) {
            const page: Device[] = await store.listDevices({
              accountId: alpha,
              query: null,
              order,
              after,
              limit: 4,
            });
            seen.push(...page);
            const last = page.at(-1);
            if (!last || page.length < 4) break;
            after = { value: last.name, key: last.id };
          }
          const sign = direction === 'asc' ? 1 : -1;
          const expected = [...seen].sort(
            (a, b) => sign * (compareNullsFirst(a.name, b.name) || compareNullsFirst(a.id, b.id)),
          );
          expect(seen.map((device) => device.id)).toEqual(expected.map((device) => device.id));
          expect(new Set(seen.map((device) => device.id)).size).toBe(30);
          expect(seen[direction === 'asc' ? 0 : 29]?.name).toBeNull();
          const exported = await exportedIds(
            store.exportDevices({ accountId: alpha, query: null, order, ...idsOnly }),
          );
          expect(exported).toEqual(seen.map((device) => device.id));
        });
      }

      it('never lets a client write the id, the account or what the service sets', async () => {
        await addDevices(alpha, [{ n: 1 }]);
        const sneaky = {
          customer_id: beta,
          id: deviceId(beta, 5),
          connection_status: 'connected',
          last_connect: 5,
          name: 'ok',
        };
        const updated = await store.updateDevice(alpha, deviceId(alpha, 1), sneaky as DeviceInput);
        expect(updated).toMatchObject({
          id: deviceId(alpha, 1),
          customer_id: alpha,
          connection_status: 'disconnected',
          last_connect: null,
          name: 'ok',
        });
        const [created] = await store.createDevices(alpha, [
          { ...sneaky, id: deviceId(alpha, 2), token_hash: 'h' } as never,
        ]);
        expect(created).toMatchObject({
          id: deviceId(alpha, 2),
          customer_id: alpha,
          connection_status: 'disconnected',
          last_connect: null,
        });
        expect(await store.getDevice(beta, deviceId(beta, 5))).toBeUndefined();
      });

      it('filters devices by query', async () => {
        await addDevices(alpha, [
          { n: 1, group: '/NorthWest' },
          { n: 2, group: '/NorthWestern' },
          { n: 3, group: '/NorthWest/Seattle' },
        ]);
        const found = await store.listDevices({
          accountId: alpha,
          query: deviceQuery("group startsWith '/NorthWest/'"),
          order: { field: 'id', direction: 'asc' },
          after: null,
          limit: 100,
        });
        expect(found.map((device) => device.id)).toEqual([deviceId(alpha, 1), deviceId(alpha, 3)]);
      });

      it('deleting a device fails its pending targets and settles their jobs; history keeps the id', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }]);
        const [one, two] = [deviceId(alpha, 1), deviceId(alpha, 2)];
        const both = await store.createJob(newJob(alpha, { devices: [one, two] }));
        const onlyOne = await store.createJob(newJob(alpha, { devices: [one] }));
        const canceled = await store.createJob(newJob(alpha, { devices: [one] }));
        await store.cancelJobs(alpha, [canceled.id], false, tick());

        const now = tick();
        expect(await store.deleteDevice(alpha, one, now)).toBe(true);
        expect(await store.getDevice(alpha, one)).toBeUndefined();
        expect(await store.deleteDevice(alpha, one, tick())).toBe(false);

        const [target] = await allTargets(alpha, onlyOne.id);
        expect(target).toMatchObject({
          device_id: one,
          status: 'failed',
          message: 'device deleted',
          end_time: now,
        });
        expect(await expectCountsAgree(alpha, onlyOne.id)).toMatchObject({
          job_status: 'failed',
          job_completion_time: now,
          progress_failures: 1,
        });
        expect(await expectCountsAgree(alpha, both.id)).toMatchObject({
          job_status: 'new',
          job_completion_time: null,
          progress_failures: 1,
          progress_pending: 1,
        });
        // A canceled target is terminal: it keeps its status.
        expect(await expectCountsAgree(alpha, canceled.id)).toMatchObject({
          job_status: 'canceled',
          progress_canceled: 1,
        });

        // Registered again, the id is a new device: old targets do not refer to it.
        await addDevices(alpha, [{ n: 1, name: 'reborn' }]);
        const matching = await store.listTargets(onlyOne.id, {
          accountId: alpha,
          query: parseQuery("name = 'reborn'", 'targets'),
          order: { field: 'device_id', direction: 'asc' },
          after: null,
          limit: 10,
        });
        expect(matching).toEqual([]);

        await store.deleteDevice(alpha, two, tick());
        expect(await expectCountsAgree(alpha, both.id)).toMatchObject({
          job_status: 'failed',
          progress_failures: 2,
        });
      });

      it('a job whose last pending target is deleted completes when another target succeeded', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }]);
        const [one, two] = [deviceId(alpha, 1), deviceId(alpha, 2)];
        const job = await store.createJob(newJob(alpha, { devices: [one, two] }));
        await startTargets(one);
        await store.applyStatuses(
          [{ device_id: one, job_id: job.id, report: { status: 'successful' } }],
          tick(),
        );
        await store.deleteDevice(alpha, two, tick());
        expect(await expectCountsAgree(alpha, job.id)).toMatchObject({
          job_status: 'complete',
          progress_success: 1,
          progress_failures: 1,
        });
      });
    });

    // ---- job creation ----

    describe('job creation', () => {
      beforeEach(async () => {
        await addDevices(alpha, [
          { n: 1, group: '/NorthWest', tags: ['sensor'] },
          { n: 2, group: '/NorthWest/Seattle', tags: ['Sensor', 'important'] },
          { n: 3, group: '/NorthWestern', tags: ['important'] },
          { n: 4, group: '/northwest/portland/east' },
          { n: 5 },
        ]);
        await addDevices(beta, [{ n: 1, group: '/NorthWest', tags: ['sensor'] }]);
      });

      const ids = (...ns: number[]) => ns.map((n) => deviceId(alpha, n));

      it('creates a new job with queued targets and its counts', async () => {
        const now = tick();
        const job = await store.createJob(
          newJob(
            alpha,
            { devices: ids(2, 1) },
            {
              now,
              description: 'reboot',
              payload: { a: [1, 'x'] },
              timeout: 30,
              offline_timeout: 60,
              targets: { devices: ids(2, 1) },
            },
          ),
        );
        expect(job).toEqual({
          id: job.id,
          customer_id: alpha,
          username: 'alice',
          job_type: 'reboot',
          job_status: 'new',
          description: 'reboot',
          job_submit_time: now,
          job_completion_time: null,
          target_count: 2,
          progress_success: 0,
          progress_failures: 0,
          progress_canceled: 0,
          progress_pending: 2,
          rollout_state: 'running',
          abort_reason: null,
          payload: { a: [1, 'x'] },
          timeout: 30,
          offline_timeout: 60,
          targets: { devices: ids(2, 1) },
          ...NO_CONTROLS,
        });
        expect(await store.getJob(alpha, job.id)).toEqual(job);
        const targets = await allTargets(alpha, job.id);
        expect(targets).toEqual(
          ids(1, 2).map(
            (device_id): JobTarget => ({
              job_id: job.id,
              device_id,
              status: 'queued',
              progress: 0,
              message: null,
              response: null,
              queued_time: now,
              start_time: null,
              end_time: null,
              attempt: 0,
              next_attempt_time: null,
            }),
          ),
        );
        await expectCountsAgree(alpha, job.id);
      });

      it('selects groups with their subgroups, not their look-alikes, case-insensitively', async () => {
        const job = await store.createJob(newJob(alpha, { groups: ['/NorthWest'] }));
        expect(await targetIds(alpha, job.id)).toEqual(ids(1, 2, 4));
        const seattle = await store.createJob(newJob(alpha, { groups: ['/NorthWest/Seattle'] }));
        expect(await targetIds(alpha, seattle.id)).toEqual(ids(2));
      });

      it('selects tags (case-insensitively), a device query, everything, and the union of them', async () => {
        const tagged = await store.createJob(newJob(alpha, { tags: ['sensor'] }));
        expect(await targetIds(alpha, tagged.id)).toEqual(ids(1, 2));
        const queried = await store.createJob(
          newJob(alpha, { query: deviceQuery("group = empty or group endsWith '/east'") }),
        );
        expect(await targetIds(alpha, queried.id)).toEqual(ids(4, 5));
        const all = await store.createJob(newJob(alpha, { all: true }));
        expect(await targetIds(alpha, all.id)).toEqual(ids(1, 2, 3, 4, 5));
        const union = await store.createJob(
          newJob(alpha, { devices: ids(5), tags: ['important'], groups: ['/NorthWest/Seattle'] }),
        );
        expect(await targetIds(alpha, union.id)).toEqual(ids(2, 3, 5));
        expect((await expectCountsAgree(alpha, union.id)).target_count).toBe(3);
      });

      it('an unknown device id, or another account’s, is 400 naming it, and nothing is created', async () => {
        const unknown = deviceId(alpha, 99);
        await expectAppError(
          store.createJob(newJob(alpha, { devices: [ids(1)[0] as string, unknown] })),
          400,
          new RegExp(unknown),
        );
        const foreign = deviceId(beta, 1);
        await expectAppError(
          store.createJob(newJob(alpha, { devices: [foreign] })),
          400,
          new RegExp(foreign),
        );
        expect(
          await store.listJobs({
            accountId: alpha,
            query: null,
            order: { field: 'id', direction: 'desc' },
            after: null,
            limit: 10,
          }),
        ).toEqual([]);
      });

      it('a job of more devices than one statement adds: each once, by id, group or all, the event loop running between the statements (credentials and jobs read meanwhile), also deleting it', async () => {
        const many = 2 * CREATE_SLICE + 5;
        for (let first = 10; first < many + 10; first += 5_000) {
          const last = Math.min(first + 5_000, many + 10);
          await addDevices(
            alpha,
            Array.from({ length: last - first }, (_, index) => ({
              n: first + index,
              group: (first + index) % 2 === 0 ? '/Big' : '/Small',
            })),
          );
        }
        const bigIds = Array.from({ length: many }, (_, index) => deviceId(alpha, 10 + index));
        const alice = await store.createUser({
          accountId: alpha,
          username: 'alice',
          passwordHash: 'h',
          role: 'user',
          now: tick(),
        });
        await store.createApiKey({ id: 'k1', userId: alice.id, secretHash: 's1', now: tick() });
        // Named twice, and not in order: still one target each.
        const byIds = await store.createJob(
          newJob(alpha, { devices: [...bigIds].reverse().concat(bigIds[0] as string) }),
        );
        expect((await expectCountsAgree(alpha, byIds.id)).target_count).toBe(many);
        const odd = deviceId(alpha, 11);
        const union = await store.createJob(newJob(alpha, { groups: ['/Big'], devices: [odd, ...ids(5)] }));
        expect((await expectCountsAgree(alpha, union.id)).target_count).toBe(Math.ceil(many / 2) + 2);
        const creating = withTurns(() => store.createJob(newJob(alpha, { all: true })));
        // Credentials and a job by id are read meanwhile, not after the creation's transaction.
        const answered: string[] = [];
        const created = creating.then(() => answered.push('created'));
        await new Promise((resolve) => setImmediate(resolve));
        expect(await store.findApiKey('k1')).toMatchObject({ id: 'k1', user: { username: 'alice' } });
        answered.push('key');
        expect(await store.getJob(alpha, byIds.id)).toMatchObject({ id: byIds.id });
        answered.push('job');
        await created;
        expect(answered).toEqual(['key', 'job', 'created']);
        const { result: all, turns } = await creating;
        expect(turns).toBeGreaterThanOrEqual(2);
        expect(await targetIds(alpha, all.id)).toEqual([...ids(1, 2, 3, 4, 5), ...bigIds]);
        // Deleted (once canceled): its targets in slices too.
        await store.cancelJobs(alpha, [all.id], false, tick());
        const deleting = await withTurns(() => store.deleteJobs(alpha, [all.id]));
        expect(deleting.result).toEqual([{ id: all.id, ok: true, value: all.id }]);
        expect(deleting.turns).toBeGreaterThanOrEqual(2);
        expect(await allTargets(alpha, all.id)).toEqual([]);
        expect((await expectCountsAgree(alpha, byIds.id)).target_count).toBe(many);
        // An unknown id after the first statement's ids is found too, and nothing is created.
        const jobCount = async () =>
          (
            await store.listJobs({
              accountId: alpha,
              query: null,
              order: { field: 'id', direction: 'desc' },
              after: null,
              limit: 100,
            })
          ).length;
        const jobsBefore = await jobCount();
        const unknown = deviceId(alpha, many + 99);
        await expectAppError(
          store.createJob(newJob(alpha, { devices: [...bigIds, unknown] })),
          400,
          new RegExp(unknown),
        );
        expect(await jobCount()).toBe(jobsBefore);
      }, 60_000);

      it('a selection without any device is 400', async () => {
        await expectAppError(store.createJob(newJob(alpha, { groups: ['/Nowhere'] })), 400);
        await expectAppError(store.createJob(newJob(alpha, { query: deviceQuery("name = 'none'") })), 400);
        await expectAppError(store.createJob(newJob(alpha, {})), 400);
      });
    });

    // ---- cancel and delete ----

    describe('cancel and delete', () => {
      let devices: string[];
      beforeEach(async () => {
        devices = (await addDevices(alpha, [{ n: 1 }, { n: 2 }, { n: 3 }])).map((device) => device.id);
      });

      it('cancels a new job: it and its queued targets become canceled', async () => {
        const job = await store.createJob(newJob(alpha, { devices }));
        const now = tick();
        const { results, notices } = await store.cancelJobs(alpha, [job.id], false, now);
        expect(notices).toEqual([]);
        expect(results).toEqual([
          {
            id: job.id,
            ok: true,
            value: expect.objectContaining({
              job_status: 'canceled',
              job_completion_time: now,
              progress_canceled: 3,
              progress_pending: 0,
            }),
          },
        ]);
        for (const target of await allTargets(alpha, job.id))
          expect(target).toMatchObject({ status: 'canceled', end_time: now });
        await expectCountsAgree(alpha, job.id);
      });

      it('cancels a job of more queued targets than one statement ends: each once, with its event, the event loop running between the statements', async () => {
        const many = 2 * CANCEL_SLICE + 5;
        await addDevices(
          alpha,
          Array.from({ length: many }, (_, index) => ({ n: 10 + index })),
        );
        const job = await store.createJob(newJob(alpha, { all: true }));
        const before = await store.listEvents({ accountId: alpha, afterId: 0, limit: 100_000 });
        const now = tick();
        const { result, turns } = await withTurns(() => store.cancelJobs(alpha, [job.id], false, now));
        expect(turns).toBeGreaterThanOrEqual(2);
        const { results } = result;
        expect(results[0]).toMatchObject({
          ok: true,
          value: { job_status: 'canceled', progress_canceled: many + 3 },
        });
        await expectCountsAgree(alpha, job.id);
        const targets = await allTargets(alpha, job.id);
        expect(targets.every((target) => target.status === 'canceled' && target.end_time === now)).toBe(true);
        const events = (
          await store.listEvents({ accountId: alpha, afterId: before.at(-1)?.id ?? 0, limit: 100_000 })
        ).filter((event) => event.topic === 'job_targets');
        expect(events.map((event) => event.object_key).sort()).toEqual(
          targets.map((target) => `${job.id}/${target.device_id}`).sort(),
        );
      }, 60_000);

      it('asks devices with in-progress targets to cancel; force cancels them at once, also later', async () => {
        const [one, two] = devices as [string, string];
        const job = await store.createJob(newJob(alpha, { devices }));
        await startTargets(one);
        await startTargets(two);

        const { results, notices } = await store.cancelJobs(alpha, [job.id], false, tick());
        expect(results[0]).toMatchObject({
          ok: true,
          value: { job_status: 'canceled', progress_pending: 2, progress_canceled: 1 },
        });
        expect(notices).toEqual([
          { job_id: job.id, device_id: one, force: false },
          { job_id: job.id, device_id: two, force: false },
        ]);
        await expectCountsAgree(alpha, job.id);
        expect(await store.pendingCancels(one)).toEqual([{ job_id: job.id, device_id: one, force: false }]);

        // A plain cancel of a canceled job changes nothing: 409.
        const again = await store.cancelJobs(alpha, [job.id], false, tick());
        expect(again.results).toEqual([
          { id: job.id, ok: false, status: 409, message: expect.stringMatching(/canceled/) },
        ]);

        // The device reports first: its result stands.
        await store.applyStatuses(
          [{ device_id: one, job_id: job.id, report: { status: 'successful' } }],
          tick(),
        );
        const forced = await store.cancelJobs(alpha, [job.id], true, tick());
        expect(forced.notices).toEqual([{ job_id: job.id, device_id: two, force: true }]);
        expect(forced.results[0]).toMatchObject({
          ok: true,
          value: { job_status: 'canceled', progress_success: 1, progress_canceled: 2, progress_pending: 0 },
        });
        await expectCountsAgree(alpha, job.id);

        // Nothing is in progress any more: force is 409 too.
        const late = await store.cancelJobs(alpha, [job.id], true, tick());
        expect(late.results[0]).toMatchObject({ ok: false, status: 409 });
      });

      it('force on a new job cancels its in-progress targets at once', async () => {
        const job = await store.createJob(newJob(alpha, { devices }));
        await startTargets(devices[0] as string);
        const now = tick();
        const { results, notices } = await store.cancelJobs(alpha, [job.id], true, now);
        expect(notices).toEqual([{ job_id: job.id, device_id: devices[0], force: true }]);
        expect(results[0]).toMatchObject({ ok: true, value: { progress_canceled: 3, progress_pending: 0 } });
        expect(await store.pendingCancels(devices[0] as string)).toEqual([]);
        await expectCountsAgree(alpha, job.id);
      });

      it('a finished job is 409; an unknown or foreign id is 404; several ids answer each', async () => {
        const finished = await store.createJob(newJob(alpha, { devices: [devices[0] as string] }));
        await startTargets(devices[0] as string);
        await store.applyStatuses(
          [{ device_id: devices[0] as string, job_id: finished.id, report: { status: 'failed' } }],
          tick(),
        );
        expect(await store.getJob(alpha, finished.id)).toMatchObject({ job_status: 'failed' });
        const open = await store.createJob(newJob(alpha, { devices }));
        await addDevices(beta, [{ n: 1 }]);
        const foreign = await store.createJob(newJob(beta, { all: true }));

        const { results } = await store.cancelJobs(
          alpha,
          [finished.id, open.id, foreign.id, 9999, open.id],
          false,
          tick(),
        );
        expect(results).toEqual([
          { id: finished.id, ok: false, status: 409, message: expect.stringMatching(/failed/) },
          { id: open.id, ok: true, value: expect.objectContaining({ id: open.id, job_status: 'canceled' }) },
          { id: foreign.id, ok: false, status: 404, message: `Job ${foreign.id} not found` },
          { id: 9999, ok: false, status: 404, message: 'Job 9999 not found' },
        ]);
        expect(await store.getJob(beta, foreign.id)).toMatchObject({ job_status: 'new' });
        expect(await store.getJob(alpha, finished.id)).toMatchObject({ job_status: 'failed' });
      });

      it('deletes only finished jobs, with their targets', async () => {
        const open = await store.createJob(newJob(alpha, { devices }));
        const done = await store.createJob(newJob(alpha, { devices }));
        await store.cancelJobs(alpha, [done.id], false, tick());
        const results = await store.deleteJobs(alpha, [open.id, done.id, 12345]);
        expect(results).toEqual([
          { id: open.id, ok: false, status: 409, message: expect.stringMatching(/cancel it first/) },
          { id: done.id, ok: true, value: done.id },
          { id: 12345, ok: false, status: 404, message: 'Job 12345 not found' },
        ]);
        expect(await store.getJob(alpha, done.id)).toBeUndefined();
        expect(await store.getJob(alpha, open.id)).toBeDefined();
        expect(await allTargets(alpha, done.id)).toEqual([]);
        expect(
          await store.listTargets(done.id, {
            accountId: alpha,
            query: null,
            order: { field: 'device_id', direction: 'asc' },
            after: null,
            limit: 10,
          }),
        ).toBeUndefined();
      });

      it('cancels and deletes by query, counting what changed and what was skipped', async () => {
        const jobs = [];
        for (let i = 0; i < 4; i++)
          jobs.push(
            await store.createJob(newJob(alpha, { devices }, { description: i < 3 ? 'batch' : 'other' })),
          );
        await store.cancelJobs(alpha, [jobs[0]?.id as number], false, tick());
        const canceled = await store.cancelJobsByQuery(
          alpha,
          jobQuery("description = 'batch'"),
          false,
          tick(),
        );
        expect(canceled).toEqual({ count: 2, skipped: 1, notices: [] });
        for (const job of jobs) await expectCountsAgree(alpha, job.id);
        expect(await store.deleteJobsByQuery(alpha, jobQuery('id > 0'))).toEqual({ count: 3, skipped: 1 });
        const left = await store.listJobs({
          accountId: alpha,
          query: null,
          order: { field: 'id', direction: 'desc' },
          after: null,
          limit: 10,
        });
        expect(left.map((job) => job.id)).toEqual([jobs[3]?.id]);
      });
    });

    // ---- tenant isolation ----

    it('two accounts never see or change each other’s objects, by id or by query', async () => {
      await addDevices(alpha, [{ n: 1, name: 'shared-name' }]);
      await addDevices(beta, [{ n: 1, name: 'shared-name' }]);
      const mine = deviceId(alpha, 1);
      const theirs = deviceId(beta, 1);
      const alphaJob = await store.createJob(newJob(alpha, { all: true }, { description: 'same' }));
      const betaJob = await store.createJob(newJob(beta, { all: true }, { description: 'same' }));

      expect(await store.getDevice(beta, mine)).toBeUndefined();
      expect(await store.updateDevice(beta, mine, { name: 'stolen' })).toBeUndefined();
      expect(await store.setDeviceToken(beta, mine, 'x')).toBe(false);
      expect(await store.deleteDevice(beta, mine, tick())).toBe(false);
      expect(await store.getJob(beta, alphaJob.id)).toBeUndefined();
      const page = {
        query: null,
        order: { field: 'device_id', direction: 'asc' },
        after: null,
        limit: 10,
      } as const;
      expect(await store.listTargets(alphaJob.id, { ...page, accountId: beta })).toBeUndefined();
      expect(await collect(store.streamTargets(alphaJob.id, { ...page, accountId: beta }))).toEqual([]);
      expect((await store.cancelJobs(beta, [alphaJob.id], true, tick())).results[0]).toMatchObject({
        ok: false,
        status: 404,
      });
      expect((await store.deleteJobs(beta, [alphaJob.id]))[0]).toMatchObject({ ok: false, status: 404 });

      const everything = { order: { field: 'id', direction: 'asc' }, after: null, limit: 100 } as const;
      const betaDevices = await store.listDevices({
        ...everything,
        accountId: beta,
        query: deviceQuery("name = 'shared-name'"),
      });
      expect(betaDevices.map((device) => device.id)).toEqual([theirs]);
      const betaJobs = await store.listJobs({
        ...everything,
        accountId: beta,
        query: jobQuery("description = 'same' or device.name = 'shared-name'"),
      });
      expect(betaJobs.map((job) => job.id)).toEqual([betaJob.id]);
      expect(
        await exportedIds(
          store.exportJobs({ accountId: beta, query: null, order: everything.order, ...idsOnly }),
        ),
      ).toEqual([String(betaJob.id)]);
      expect(
        await exportedIds(
          store.exportDevices({ accountId: beta, query: null, order: everything.order, ...idsOnly }),
        ),
      ).toEqual([theirs]);

      expect(await store.cancelJobsByQuery(beta, jobQuery('id > 0'), false, tick())).toMatchObject({
        count: 1,
        skipped: 0,
      });
      expect(await store.deleteJobsByQuery(beta, jobQuery('id > 0'))).toEqual({ count: 1, skipped: 0 });
      expect(await store.getJob(alpha, alphaJob.id)).toMatchObject({
        job_status: 'new',
        description: 'same',
      });
      expect(await store.getDevice(alpha, mine)).toMatchObject({ name: 'shared-name' });
      expect((await store.findDeviceCredentials(mine))?.token_hash).toBe('hash-1');
      await expectCountsAgree(alpha, alphaJob.id);
    });

    // ---- dispatch ----

    describe('taking requests under flow control', () => {
      it('a job pass skips the devices at their limit; a device can take only its queued targets', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }, { n: 3 }]);
        const ids = [1, 2, 3].map((n) => deviceId(alpha, n));
        for (const id of ids) await setConnection(store, id, 'connected', tick());
        const first = await store.createJob(newJob(alpha, { devices: ids }));
        const second = await store.createJob(newJob(alpha, { devices: ids }));
        await store.startNewJobs(claim());
        const [one, two, three] = ids as [string, string, string];

        const taken = await store.takeJobRequests(first.id, tick(), 10, '', [two]);
        expect(taken.map((request) => request.device_id)).toEqual([one, three]);
        // the skipped target is still queued: the device takes it when it has room, and only the
        // queued ones when in-progress ones are not to be sent again
        const queued = await store.takeRequests(two, tick(), 10, 0, false);
        expect(queued.map((request) => request.job_id)).toEqual([first.id, second.id]);
        expect(await store.takeRequests(one, tick(), 10, 0, false)).toEqual([
          expect.objectContaining({ job_id: second.id, device_id: one }),
        ]);
        expect((await store.takeRequests(one, tick(), 10, 0)).map((request) => request.job_id)).toEqual([
          first.id,
          second.id,
        ]);
        await expectCountsAgree(alpha, first.id);
      });
    });

    describe('presence and state in batches', () => {
      const presence = (n: number, status: 'connected' | 'disconnected', at: number, replay = false) => ({
        device_id: deviceId(alpha, n),
        status,
        at,
        topic_id: deviceId(alpha, n).toLowerCase(),
        replay,
      });
      const seen = async (n: number) => {
        const device = await store.getDevice(alpha, deviceId(alpha, n));
        return {
          connection_status: device?.connection_status,
          last_connect: device?.last_connect,
          last_disconnect: device?.last_disconnect,
        };
      };

      it('applies online and offline of many devices in one batch, each as received', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }, { n: 3 }]);
        const t = tick();
        await store.setConnections([presence(2, 'connected', t - 1)]);
        expect(
          await store.setConnections([
            presence(1, 'connected', t),
            presence(2, 'disconnected', t + 1),
            presence(9, 'connected', t + 2),
            // a Will of a device that never connected: only its presence time moves
            presence(3, 'disconnected', t + 3),
          ]),
        ).toEqual([true, true, false, true]);
        expect(await seen(1)).toEqual({
          connection_status: 'connected',
          last_connect: t,
          last_disconnect: null,
        });
        expect(await seen(2)).toEqual({
          connection_status: 'disconnected',
          last_connect: t - 1,
          last_disconnect: t + 1,
        });
        expect(await seen(3)).toEqual({
          connection_status: 'disconnected',
          last_connect: null,
          last_disconnect: null,
        });
        // the spelling a device connected with is kept for publishing to it
        expect(await store.deviceTopicIds([deviceId(alpha, 1), deviceId(alpha, 3)])).toEqual(
          new Map([[deviceId(alpha, 1), deviceId(alpha, 1).toLowerCase()]]),
        );
      });

      it('orders by the time received, whatever batch or place in it a message comes in', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }, { n: 3 }]);
        const t = tick();
        // one device twice in a batch: both apply, in order
        expect(
          await store.setConnections([presence(1, 'connected', t), presence(1, 'disconnected', t + 5)]),
        ).toEqual([true, true]);
        expect(await seen(1)).toEqual({
          connection_status: 'disconnected',
          last_connect: t,
          last_disconnect: t + 5,
        });
        // reordered: the offline received later comes first, and the late online never marks the
        // offline device connected, in the same batch or a later one
        expect(
          await store.setConnections([
            presence(2, 'disconnected', t + 10),
            presence(2, 'connected', t + 8),
            presence(3, 'connected', t + 9),
          ]),
        ).toEqual([true, false, true]);
        expect(
          await store.setConnections([presence(1, 'connected', t + 4), presence(3, 'disconnected', t + 7)]),
        ).toEqual([false, false]);
        expect((await seen(1)).connection_status).toBe('disconnected');
        expect((await seen(2)).connection_status).toBe('disconnected');
        expect(await seen(3)).toEqual({
          connection_status: 'connected',
          last_connect: t + 9,
          last_disconnect: null,
        });
      });

      it('is idempotent: a batch applied again, or replayed, changes nothing more', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }]);
        const t = tick();
        const batch = [
          presence(1, 'connected', t),
          presence(2, 'connected', t),
          presence(2, 'disconnected', t + 1),
        ];
        await store.setConnections(batch);
        const once = [await seen(1), await seen(2)];
        await store.setConnections(batch);
        expect([await seen(1), await seen(2)]).toEqual(once);
        // a replayed (retained) online of a device known connected is no change, nor is a Will again
        expect(
          await store.setConnections([
            presence(1, 'connected', t + 2, true),
            presence(2, 'disconnected', t + 2),
          ]),
        ).toEqual([false, true]);
        expect([await seen(1), await seen(2)]).toEqual(once);
        expect(await store.setConnections([presence(2, 'connected', t + 3, true)])).toEqual([true]);
        expect((await seen(2)).connection_status).toBe('connected');
      });

      it('applies the states of a batch in order, in one transaction', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }]);
        const now = tick();
        expect(
          await store.updateDeviceStates(
            [
              { device_id: deviceId(alpha, 1), state: { firmware_version: '1.0', ip: '10.0.0.1' } },
              { device_id: deviceId(alpha, 9), state: { firmware_version: '9.9' } },
              { device_id: deviceId(alpha, 2), state: { firmware_version: '2.0' } },
              { device_id: deviceId(alpha, 1), state: { firmware_version: '1.1' } },
            ],
            now,
          ),
        ).toEqual([true, false, true, true]);
        const one = await store.getDevice(alpha, deviceId(alpha, 1));
        expect([one?.firmware_version, one?.ip, one?.last_update]).toEqual(['1.1', '10.0.0.1', now]);
        expect((await store.getDevice(alpha, deviceId(alpha, 2)))?.firmware_version).toBe('2.0');
      });

      it('finds, in one query, which of the devices that came online have requests pending', async () => {
        await addDevices(alpha, [{ n: 1 }, { n: 2 }, { n: 3 }]);
        const [one, two, three] = [1, 2, 3].map((n) => deviceId(alpha, n)) as [string, string, string];
        await store.createJob(newJob(alpha, { devices: [one, three] }));
        const done = await store.createJob(newJob(alpha, { devices: [two] }));
        await store.startNewJobs(claim());
        await store.cancelJobs(alpha, [done.id], true, tick());
        expect(await store.devicesWithRequests([three, two, one, deviceId(alpha, 9)])).toEqual([one, three]);
        expect(await store.devicesWithRequests([])).toEqual([]);
      });
    });

    // ---- paging ----

    it('answers a JSON page with the jobs of the list, their timestamps in ISO 8601, and where the next starts', async () => {
      await addDevices(alpha, [{ n: 1 }]);
      const descriptions = [null, 'plain', 'quote " and \\ backslash', 'naïve — ✓ 😀', 'line\nbreak'];
      for (const description of descriptions)
        await store.createJob(newJob(alpha, { all: true }, { description, now: tick() }));
      const [first] = await store.listJobs({
        accountId: alpha,
        query: null,
        order: { field: 'id', direction: 'asc' },
        after: null,
        limit: 1,
      });
      await store.cancelJobs(alpha, [first?.id ?? 0], false, tick());
      const asJson = (job: Job) =>
        Object.fromEntries(
          Object.entries(job).map(([field, value]) => [
            field,
            field.endsWith('_time') && typeof value === 'number' ? new Date(value).toISOString() : value,
          ]),
        );
      for (const order of [
        { field: 'description', direction: 'desc' },
        { field: 'job_completion_time', direction: 'asc' },
      ] as const) {
        let after: Keyset | null = null;
        for (;;) {
          const request = { accountId: alpha, query: null, order, after, limit: 2 };
          const jobs = await store.listJobs({ ...request, limit: 3 });
          const page = await store.listJobsJson({
            ...request,
            fields: JOB_LIST_FIELDS,
            timestamps: new Set(['job_submit_time', 'job_completion_time']),
          });
          expect(JSON.parse(new TextDecoder().decode(page.json))).toEqual(jobs.slice(0, 2).map(asJson));
          expect(page.count).toBe(Math.min(jobs.length, 2));
          const last = jobs[1];
          expect(page.next).toEqual(
            jobs.length > 2 && last ? { value: last[order.field], key: last.id } : null,
          );
          if (page.next === null) break;
          after = page.next;
        }
      }
    });

    it('answers pages asked together, identical or not, each with every job created before it was asked', async () => {
      await addDevices(alpha, [{ n: 1 }]);
      const timestamps = new Set(['job_submit_time', 'job_completion_time']);
      const page = (limit: number) =>
        store.listJobsJson({
          accountId: alpha,
          query: null,
          order: { field: 'id', direction: 'desc' },
          after: null,
          limit,
          fields: JOB_LIST_FIELDS,
          timestamps,
        });
      const asked: { page: ReturnType<typeof page>; limit: number; createdBefore: number }[] = [];
      for (let created = 0; created < 30; created++) {
        // Identical pages (the same statement), one of another size, then a job created meanwhile.
        for (const limit of [100, 100, 100, 7, 100])
          asked.push({ page: page(limit), limit, createdBefore: created });
        await store.createJob(newJob(alpha, { all: true }, { now: tick() }));
      }
      for (const { page: answered, limit, createdBefore } of asked) {
        const { count } = await answered;
        expect(count).toBeGreaterThanOrEqual(Math.min(createdBefore, limit));
      }
      expect((await page(100)).count).toBe(30);
    });

    describe('CSV exports', () => {
      /**
       * The export of `fields` equals the model's encoding (src/model/csv.ts) of `items` as lists
       * answer them. PostgreSQL's COPY writes the batches whose values its SQL can write exactly,
       * and a batch holding any other value (a JSON string with escapes) is encoded in JavaScript.
       */
      async function expectEncoded<T extends object>(
        records: CsvRecords,
        items: T[],
        fields: string[],
        timestamps: ReadonlySet<string>,
      ): Promise<void> {
        const cell = (value: unknown, timestamp: boolean): string =>
          value === null || value === undefined
            ? ''
            : timestamp
              ? (isoTime(value as number) ?? '')
              : csvField(valueText(value));
        const text = await exportText(records);
        const expected = items.map(
          (item) =>
            `${fields.map((field) => cell(item[field as keyof T], timestamps.has(field))).join(',')}\r\n`,
        );
        expect(text).toEqual(expected.join(''));
      }
      const awkward = ['say "hi", then\r\nleave', 'comma, only', 'naïve 日本 ✓', '', 'line\nbreak', 'plain'];
      const order: Order = { field: 'id', direction: 'asc' };

      it('writes text, numbers and timestamps of devices and jobs as the model encodes them', async () => {
        // Devices 9–12: numbers in exponent notation, connection times before 1970 and after 9999.
        const numbers = [
          87,
          -75.5,
          0.1 + 0.2,
          1.5e-6,
          1.2345678901234568e20,
          -0,
          123456789.125,
          null,
          1e-7,
          1e21,
        ];
        await addDevices(
          alpha,
          [...numbers, 1, 2].map((number, index) => ({
            n: index + 1,
            name: awkward[index % awkward.length] as string,
            serial_number: index % 3 === 0 ? null : `S,${index}`,
            signal_strength: number,
            signal_quality: index,
            tags: index % 2 === 0 ? ['a "b"', 'c,d'] : [],
          })),
        );
        await setConnection(store, deviceId(alpha, 1), 'connected', clock);
        await setConnection(store, deviceId(alpha, 2), 'connected', 0);
        await setConnection(store, deviceId(alpha, 11), 'connected', -86_400_123);
        await setConnection(store, deviceId(alpha, 12), 'connected', 253_402_300_800_005);
        const fields = [
          'id',
          'name',
          'serial_number',
          'tags',
          'signal_strength',
          'signal_quality',
          'last_connect',
        ];
        const timestamps = new Set(['last_connect']);
        const list = { accountId: alpha, order, after: null, limit: 100 };
        for (const query of [deviceQuery('signal_quality < 8'), deviceQuery('signal_quality >= 8')]) {
          await expectEncoded(
            store.exportDevices({ accountId: alpha, query, order, fields, timestamps }),
            await store.listDevices({ ...list, query }),
            fields,
            timestamps,
          );
        }

        const jobs = [];
        for (const description of [...awkward, null]) {
          jobs.push(await store.createJob(newJob(alpha, { all: true }, { description })));
        }
        const jobFields = [
          'id',
          'description',
          'job_status',
          'job_submit_time',
          'job_completion_time',
          'target_count',
        ];
        const jobTimes = new Set(['job_submit_time', 'job_completion_time']);
        await expectEncoded(
          store.exportJobs({ accountId: alpha, query: null, order, fields: jobFields, timestamps: jobTimes }),
          jobs,
          jobFields,
          jobTimes,
        );
      });

      it('writes any text, number and timestamp as the model encodes them', async () => {
        const text = fc.string({
          unit: fc.constantFrom('a', ' ', '"', ',', '\r', '\n', "'", '\\', '$1', 'é', '日', '\uD83D\uDE00'),
          maxLength: 8,
        });
        const device = fc.record({
          name: fc.option(text, { nil: null }),
          serial_number: fc.option(text, { nil: null }),
          description: fc.option(text, { nil: null }),
          tags: fc.array(text, { maxLength: 3 }),
          // Also where JavaScript and PostgreSQL switch to exponents.
          signal_strength: fc.option(
            fc.oneof(
              fc.double(),
              fc.integer({ min: -1e6, max: 1e6 }),
              fc.double({ min: 1e-9, max: 1e-5 }),
              fc.double({ min: 1e14, max: 1e22 }),
            ),
            { nil: null },
          ),
          last_connect: fc.option(
            // Mostly four-digit years; any time Date writes.
            fc.oneof(
              { arbitrary: fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }), weight: 9 },
              { arbitrary: fc.integer({ min: -62_198_755_200_000, max: 8_640_000_000_000_000 }), weight: 1 },
            ),
            { nil: null },
          ),
        });
        const fields = [
          'id',
          'name',
          'serial_number',
          'description',
          'tags',
          'signal_strength',
          'last_connect',
        ];
        const timestamps = new Set(['last_connect']);
        const byName: Order = { field: 'name', direction: 'desc' };
        let run = 0;
        await fc.assert(
          fc.asyncProperty(fc.array(device, { minLength: 1, maxLength: 6 }), async (devices) => {
            const account = (await store.ensureAccount(`csv-${++run}`, tick())).id;
            await addDevices(
              account,
              devices.map(({ last_connect, ...input }, index) => ({ n: index + 1, ...input })),
            );
            for (const [index, { last_connect }] of devices.entries()) {
              if (last_connect !== null)
                await setConnection(store, deviceId(account, index + 1), 'connected', last_connect);
            }
            const listed = await store.listDevices({
              accountId: account,
              query: null,
              order: byName,
              after: null,
              limit: 10,
            });
            // With and without a JSON column, a number and a time: a store may write the rows of a
            // batch otherwise when it holds one of these.
            const textOnly = ['id', 'name', 'serial_number', 'description'];
            for (const written of [fields, fields.filter((field) => field !== 'tags'), textOnly]) {
              await expectEncoded(
                store.exportDevices({
                  accountId: account,
                  query: null,
                  order: byName,
                  fields: written,
                  timestamps,
                }),
                listed,
                written,
                timestamps,
              );
            }
          }),
          { numRuns: 40 },
        );
      });

      it('writes the JSON of target responses as the model encodes it', async () => {
        await addDevices(
          alpha,
          Array.from({ length: 8 }, (_, index) => ({ n: index + 1 })),
        );
        // Job one's responses SQL writes exactly; job two's include strings with escapes.
        const responses: unknown[][] = [
          [{ a: 'x"y', b: [1, 2.5] }, 'plain', 'comma, "quoted"', 42, true, null, [], ''],
          [{ '': 'ü' }, 'with "quotes"', 'line\nbreak', 'tab\there', -0.5, false, [null], 'plain'],
        ];
        const fields = ['device_id', 'status', 'response', 'end_time'];
        const timestamps = new Set(['end_time']);
        for (const jobResponses of responses) {
          const job = await store.createJob(newJob(alpha, { all: true }));
          for (const index of jobResponses.keys()) await startTargets(deviceId(alpha, index + 1));
          await store.applyStatuses(
            jobResponses.map((response, index) => ({
              device_id: deviceId(alpha, index + 1),
              job_id: job.id,
              report: { status: 'successful', response },
            })),
            tick(),
          );
          await expectEncoded(
            store.exportTargets(job.id, {
              accountId: alpha,
              query: null,
              order: { field: 'device_id', direction: 'asc' },
              fields,
              timestamps,
            }),
            await allTargets(alpha, job.id),
            fields,
            timestamps,
          );
        }
      });
    });

    describe('keyset paging over 2,500 jobs', () => {
      const JOBS = 2_500;
      let initial: Job[];

      beforeEach(async () => {
        await addDevices(alpha, [{ n: 1 }]);
        const device = deviceId(alpha, 1);
        initial = [];
        const base = clock;
        for (let i = 0; i < JOBS; i++) {
          // Submit times with many ties; descriptions with NULLs, empty ones, repeats, and what CSV
          // quotes (an export by description has batches end on each of these).
          const description =
            i % 3 === 0 ? null : i % 10 === 1 ? '' : `d${(i * 37) % 101}${i % 2 === 0 ? ', "ü"\n' : ''}`;
          const job = await store.createJob(
            newJob(alpha, { devices: [device] }, { now: base + Math.floor(i / 7), description }),
          );
          initial.push(job);
        }
        // Half the jobs are canceled, at times with ties: job_completion_time is NULL for the rest.
        for (let i = 0; i < JOBS; i += 2) {
          await store.cancelJobs(alpha, [initial[i]?.id as number], false, base + 10_000 + (i % 13));
        }
        clock = base + 20_000;
      });

      const fields: [JobField, 'asc' | 'desc'][] = [
        ['id', 'desc'],
        ['job_completion_time', 'asc'],
        ['job_completion_time', 'desc'],
        ['job_submit_time', 'asc'],
        ['description', 'desc'],
        ['job_status', 'asc'],
      ];

      for (const [field, direction] of fields) {
        it(`orderby ${field} ${direction}: sees every job that existed throughout exactly once`, async () => {
          const order: Order = { field, direction };
          const deleted = new Set<number>();
          const seen: Job[] = [];
          let after: Keyset | null = null;
          let round = 0;
          const finished = () => initial.filter((job, i) => i % 2 === 0 && !deleted.has(job.id));
          for (;;) {
            const page: Job[] = await store.listJobs({
              accountId: alpha,
              query: null,
              order,
              after,
              limit: 100,
            });
            seen.push(...page);
            const last = page.at(-1);
            if (!last || page.length < 100) break;
            after = { value: last[field], key: last.id };
            // Between pages: new jobs arrive and finished ones (seen or not) are deleted.
            round++;
            for (let i = 0; i < 3; i++) {
              await store.createJob(
                newJob(
                  alpha,
                  { all: true },
                  { now: clock - round * 50 + i * 1000, description: i === 0 ? null : `n${round}` },
                ),
              );
            }
            const candidates = finished();
            const victims = [
              candidates[(round * 17) % candidates.length],
              candidates[(round * 31 + 5) % candidates.length],
            ];
            for (const victim of victims) {
              if (victim && !deleted.has(victim.id)) {
                deleted.add(victim.id);
                await store.deleteJobs(alpha, [victim.id]);
              }
            }
          }
          const counts = new Map<number, number>();
          for (const job of seen) counts.set(job.id, (counts.get(job.id) ?? 0) + 1);
          expect([...counts.values()].every((count) => count === 1)).toBe(true);
          const missing = initial.filter((job) => !deleted.has(job.id) && !counts.has(job.id));
          expect(missing).toEqual([]);
          expect(deleted.size).toBeGreaterThan(20);
          // What was seen is in the requested order.
          const sign = direction === 'asc' ? 1 : -1;
          for (let i = 1; i < seen.length; i++) {
            const [a, b] = [seen[i - 1] as Job, seen[i] as Job];
            const cmp = sign * (compareNullsFirst(a[field], b[field]) || compareNullsFirst(a.id, b.id));
            expect(cmp).toBeLessThan(0);
          }
        });
      }

      it('exports every job in order, and other writes proceed between batches', async () => {
        const order: Order = { field: 'job_submit_time', direction: 'asc' };
        const records = store
          .exportJobs({ accountId: alpha, query: null, order, ...idsOnly })
          [Symbol.asyncIterator]();
        const first = await records.next();
        expect(first.done).toBe(false);
        // The export is in flight; a write completes meanwhile.
        const extra = await store.createJob(newJob(alpha, { all: true }, { now: clock + 1_000_000 }));
        async function* rest() {
          yield first.value as string | Uint8Array;
          for (let next = await records.next(); !next.done; next = await records.next()) yield next.value;
        }
        // Batches are read ahead of the one written: the job created meanwhile is in the export
        // (once, last by its submit time) if the last batch was read after it, and else not at all.
        const exported = await exportedIds(rest());
        const expected = [...initial, extra].sort(
          (a, b) => a.job_submit_time - b.job_submit_time || a.id - b.id,
        );
        expect(exported).toEqual(
          expected
            .map((job) => String(job.id))
            .slice(0, exported.at(-1) === String(extra.id) ? undefined : -1),
        );
        // Batches that end on text that CSV quotes, on an empty text or on NULL continue after it.
        for (const direction of ['asc', 'desc'] as const) {
          const byDescription = await exportedIds(
            store.exportJobs({
              accountId: alpha,
              query: null,
              order: { field: 'description', direction },
              ...idsOnly,
            }),
          );
          const sign = direction === 'asc' ? 1 : -1;
          const sorted = [...initial, extra].sort(
            (a, b) => sign * (compareNullsFirst(a.description, b.description) || a.id - b.id),
          );
          expect(byDescription).toEqual(sorted.map((job) => String(job.id)));
        }
        const filtered = await exportedIds(
          store.exportJobs({
            accountId: alpha,
            query: jobQuery("job_status = 'canceled'"),
            order,
            ...idsOnly,
          }),
        );
        expect(filtered).toHaveLength(JOBS / 2);
        // A client that leaves after the first batch: the batches read ahead are dropped unread.
        const left = store
          .exportJobs({ accountId: alpha, query: null, order, ...idsOnly })
          [Symbol.asyncIterator]();
        expect((await left.next()).done).toBe(false);
        await left.return?.(undefined);
        expect((await left.next()).done).toBe(true);
      });
      it('exports by id every job once and in order, across gaps, another account and jobs added meanwhile', async () => {
        // A gap wider than a batch after the first (SQLite reads ranges of ids there, wider where
        // sparse), every third job gone after it, then jobs of both accounts, interleaved.
        const gone = [
          ...initial.slice(1_100, 2_300),
          ...initial.slice(2_300).filter((_, i) => i % 3 === 0),
        ].map((job) => job.id);
        await store.cancelJobs(alpha, gone, true, clock);
        await store.deleteJobs(alpha, gone);
        await addDevices(beta, [{ n: 1 }]);
        const added: Job[] = [];
        for (let i = 0; i < 1_200; i++) {
          const account = i % 3 === 0 ? alpha : beta;
          const job = await store.createJob(newJob(account, { devices: [deviceId(account, 1)] }));
          if (account === alpha) added.push(job);
        }
        const kept = [...initial.filter((job) => !gone.includes(job.id)), ...added].map((job) => job.id);
        for (const direction of ['asc', 'desc'] as const) {
          const records = store
            .exportJobs({ accountId: alpha, query: null, order: { field: 'id', direction }, ...idsOnly })
            [Symbol.asyncIterator]();
          const first = await records.next();
          // In flight: a job added now comes last (asc) if read after it was added, and else not at all.
          const extra = await store.createJob(newJob(alpha, { devices: [deviceId(alpha, 1)] }));
          async function* rest() {
            yield first.value as string | Uint8Array;
            for (let next = await records.next(); !next.done; next = await records.next()) yield next.value;
          }
          const exported = await exportedIds(rest());
          const expected = direction === 'asc' ? kept : [...kept].reverse();
          expect(exported).toEqual(
            [...expected, ...(exported.at(-1) === String(extra.id) ? [extra.id] : [])].map(String),
          );
          kept.push(extra.id);
          const canceled = await exportedIds(
            store.exportJobs({
              accountId: alpha,
              query: jobQuery("job_status = 'canceled'"),
              order: { field: 'id', direction },
              ...idsOnly,
            }),
          );
          const canceledIds = initial
            .filter((job, i) => i % 2 === 0 && !gone.includes(job.id))
            .map((job) => String(job.id));
          expect(canceled).toEqual(direction === 'asc' ? canceledIds : canceledIds.reverse());
        }
      });
    });

    it('lists and streams targets with a query and orderby', async () => {
      await addDevices(
        alpha,
        Array.from({ length: 12 }, (_, i) => ({ n: i + 1, group: i < 6 ? '/a' : '/b' })),
      );
      const job = await store.createJob(newJob(alpha, { all: true }));
      await startTargets(deviceId(alpha, 3));
      await startTargets(deviceId(alpha, 9));
      const request = {
        accountId: alpha,
        query: parseQuery("status = 'in_progress' or group = '/a'", 'targets'),
        after: null,
        limit: 100,
      };
      const listed = await store.listTargets(job.id, {
        ...request,
        order: { field: 'status', direction: 'desc' },
      });
      expect(listed?.map((target) => target.device_id)).toEqual([
        ...[6, 5, 4, 2, 1].map((n) => deviceId(alpha, n)),
        ...[9, 3].map((n) => deviceId(alpha, n)),
      ]);
      const streamed = await collect(
        store.streamTargets(job.id, { ...request, order: { field: 'status', direction: 'desc' } }),
      );
      expect(streamed).toEqual(listed);
      await expectCountsAgree(alpha, job.id);
    });

    it('rejects an unknown order field with 400', async () => {
      await expectAppError(
        store.listJobs({
          accountId: alpha,
          query: null,
          order: { field: 'payload', direction: 'asc' },
          after: null,
          limit: 1,
        }),
        400,
      );
      await expectAppError(
        store.listDevices({
          accountId: alpha,
          query: null,
          order: { field: 'tags', direction: 'asc' },
          after: null,
          limit: 1,
        }),
        400,
      );
    });

    it('creates a job of 100,000 targets in one call', async () => {
      for (let start = 0; start < 100_000; start += 10_000) {
        await store.createDevices(
          alpha,
          Array.from({ length: 10_000 }, (_, i) => ({
            id: deviceId(alpha, start + i),
            token_hash: 'h',
            group: '/fleet',
          })),
        );
      }
      const job = await store.createJob(newJob(alpha, { groups: ['/fleet'] }));
      expect(job).toMatchObject({ target_count: 100_000, progress_pending: 100_000, job_status: 'new' });
      const { results } = await store.cancelJobs(alpha, [job.id], false, tick());
      expect(results[0]).toMatchObject({
        ok: true,
        value: { progress_canceled: 100_000, progress_pending: 0 },
      });
    }, 120_000);
  });
}

/** Ascending order with missing values first; text by code point. */
function compareNullsFirst(a: string | number | null, b: string | number | null): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}
