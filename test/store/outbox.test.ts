import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/model/event.js';
import type { JobTarget } from '../../src/model/job.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { setConnection } from '../setup/presence.js';
import { jobForAllDevices } from './new-job.js';

/**
 * The outbox with two store handles on one database (two nodes) writing at once: a reader that
 * follows the events by id while they are written misses none (ids are handed out in commit
 * order), each object's events are in the order of its changes, and each object's last event is
 * the object as the store has it.
 */

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-outbox-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const TARGETS = 30;
const ROUNDS = 8;

const engines: [string, () => Promise<[Store, Store]>][] = [
  [
    'SQLite',
    async () => {
      const store = await openSqliteStore(join(folder, 'outbox.db'));
      return [store, store];
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = await newPostgresDatabase();
      return [await openPostgresStore(url), await openPostgresStore(url)];
    },
  ],
];

describe.each(engines)('%s outbox, two handles writing', (_name, open) => {
  it('a reader following by id misses no event; per object in order; the last is the stored object', async () => {
    const [one, two] = await open();
    try {
      let now = Date.UTC(2026, 11, 1);
      const account = (await one.ensureAccount('outbox', now)).id;
      const ids = Array.from(
        { length: TARGETS },
        (_, i) => `00000000-00000000-00000000-${i.toString(16).toUpperCase().padStart(8, '0')}`,
      );
      await one.createDevices(
        account,
        ids.map((id) => ({ id, token_hash: 'hash' })),
      );
      const followed: StoredEvent[] = [];
      let writing = true;
      const follow = (async () => {
        for (;;) {
          const done = !writing;
          const batch = await two.listEvents({
            accountId: account,
            afterId: followed.at(-1)?.id ?? 0,
            limit: 1000,
          });
          followed.push(...batch);
          if (done && batch.length === 0) return;
          await new Promise((resolve) => setTimeout(resolve, 1));
        }
      })();
      const jobIds: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        now += 1000;
        const job = await one.createJob(jobForAllDevices(account, now));
        jobIds.push(job.id);
        await one.startNewJobs({ node: 'one', now, expires: now + 60_000 });
        await Promise.all([
          ...ids.map((id, n) => setConnection(n % 2 === 0 ? one : two, id, 'connected', now)),
          ...ids.slice(0, TARGETS / 2).map((id) => two.takeRequests(id, now, 10, 0)),
        ]);
        const report = (status: 'successful' | 'failed') =>
          ids.map((device_id) => ({ device_id, job_id: job.id, report: { status } }));
        await Promise.all([
          one.applyStatuses(report('successful'), now + 10),
          two.applyStatuses(report('failed'), now + 10),
          ...ids.map((id, n) => setConnection(n % 2 === 1 ? one : two, id, 'disconnected', now + 10)),
        ]);
      }
      writing = false;
      await follow;

      const all = await one.listEvents({ accountId: account, afterId: 0, limit: 100_000 });
      expect(followed.map((event) => event.id)).toEqual(all.map((event) => event.id));
      expect(new Set(all.map((event) => event.uuid)).size).toBe(all.length);

      // A target's events: in progress at most once, then one final status, never anything after.
      const byObject = new Map<string, StoredEvent[]>();
      for (const event of all) {
        const key = `${event.topic} ${event.object_key}`;
        byObject.set(key, [...(byObject.get(key) ?? []), event]);
      }
      for (const jobId of jobIds) {
        const targets =
          (await one.listTargets(jobId, {
            accountId: account,
            query: null,
            order: { field: 'device_id', direction: 'asc' },
            after: null,
            limit: 1000,
          })) ?? [];
        for (const target of targets) {
          const events = byObject.get(`job_targets ${jobId}/${target.device_id}`) ?? [];
          const statuses = events.map((event) => (event.data as JobTarget).status);
          expect(statuses.filter((status) => status !== 'in_progress')).toEqual([target.status]);
          expect(events.at(-1)?.data).toEqual(target);
        }
        const job = await one.getJob(account, jobId);
        const jobEvents = byObject.get(`jobs ${jobId}`) ?? [];
        expect(jobEvents[0]?.operation).toBe('INSERTION');
        const pending = jobEvents.map(
          (event) => (event.data as { progress_pending: number }).progress_pending,
        );
        expect(pending).toEqual([...pending].sort((a, b) => b - a));
        expect(jobEvents.at(-1)?.data).toMatchObject({
          job_status: job?.job_status,
          progress_success: job?.progress_success,
          progress_failures: job?.progress_failures,
          progress_pending: 0,
        });
      }
      for (const id of ids) {
        const events = byObject.get(`devices ${id}`) ?? [];
        const device = await one.getDevice(account, id);
        expect(events.at(-1)?.data).toEqual(device);
      }
    } finally {
      await one.close();
      if (two !== one) await two.close();
    }
  });
});
