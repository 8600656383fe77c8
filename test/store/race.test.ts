import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { progressBucket, type TargetStatus } from '../../src/model/job.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { jobForAllDevices } from './new-job.js';

/**
 * Two store handles on one database (two nodes) race on the same targets: device statuses, timeouts
 * and cancels (plain and forced). Every target is counted once, in the counter of its final status,
 * and the store-wide totals add up to the jobs.
 */

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-race-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const ROUNDS = 25;
const TARGETS = 40;

const engines: [string, () => Promise<[Store, Store]>][] = [
  [
    'SQLite',
    // Two handles in one process would wait on each other's write lock with the event loop
    // blocked; one handle interleaves the same calls at every await instead.
    async () => {
      const store = await openSqliteStore(join(folder, 'race.db'));
      return [store, store];
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = await newPostgresDatabase();
      const first = await openPostgresStore(url);
      return [first, await openPostgresStore(url)];
    },
  ],
];

describe.each(engines)('%s, two handles racing', (_name, open) => {
  it(`counts each of ${ROUNDS * TARGETS} targets once: status vs timeout vs cancel vs force`, async () => {
    const [one, two] = await open();
    try {
      let now = Date.UTC(2026, 11, 1);
      const account = (await one.ensureAccount('race', now)).id;
      const ids = Array.from(
        { length: TARGETS },
        (_, i) => `00000000-00000000-00000000-${i.toString(16).toUpperCase().padStart(8, '0')}`,
      );
      await one.createDevices(
        account,
        ids.map((id) => ({ id, token_hash: 'hash' })),
      );
      for (let round = 0; round < ROUNDS; round++) {
        now += 1000;
        const job = await one.createJob(
          jobForAllDevices(account, now, {
            timeout: 1,
            offline_timeout: 1,
          }),
        );
        await one.startNewJobs({ node: 'one', now, expires: now });
        // Half the targets in progress, half still queued.
        for (const id of ids.slice(0, TARGETS / 2)) await two.takeRequests(id, now, 10, 0);
        const later = now + 5_000;
        const statuses = (reverse: boolean, status: 'successful' | 'failed') => {
          const order = reverse ? [...ids].reverse() : ids;
          return order.map((device_id) => ({ device_id, job_id: job.id, report: { status } }));
        };
        await Promise.all([
          one.applyStatuses(statuses(round % 2 === 0, 'successful'), later),
          two.expireTargets(later, TARGETS),
          two.applyStatuses(statuses(round % 2 === 1, 'failed'), later),
          round % 3 === 0
            ? one.cancelJobs(account, [job.id], round % 2 === 0, later)
            : two.cancelJobs(account, [job.id], true, later),
        ]);
        const after = await one.getJob(account, job.id);
        const targets = await one.listTargets(job.id, {
          accountId: account,
          query: null,
          order: { field: 'device_id', direction: 'asc' },
          after: null,
          limit: 1000,
        });
        const counts = {
          progress_success: 0,
          progress_failures: 0,
          progress_canceled: 0,
          progress_pending: 0,
        };
        for (const target of targets ?? []) counts[progressBucket(target.status as TargetStatus)]++;
        expect({
          target_count: after?.target_count,
          progress_success: after?.progress_success,
          progress_failures: after?.progress_failures,
          progress_canceled: after?.progress_canceled,
          progress_pending: after?.progress_pending,
        }).toEqual({ target_count: TARGETS, ...counts });
      }
      // The store-wide totals (PostgreSQL: in shards, one per connection) add up to the jobs.
      const jobs = await one.listJobs({
        accountId: account,
        query: null,
        order: { field: 'id', direction: 'asc' },
        after: null,
        limit: 1000,
      });
      const sum = (pick: (job: (typeof jobs)[number]) => number) =>
        jobs.reduce((total, job) => total + pick(job), 0);
      const totals = await two.totals();
      expect(totals.targets).toEqual({
        successful: sum((job) => job.progress_success),
        failed: sum((job) => job.progress_failures),
        canceled: sum((job) => job.progress_canceled),
        pending: sum((job) => job.progress_pending),
      });
      expect(Object.values(totals.jobs).reduce((total, count) => total + count, 0)).toBe(ROUNDS);
      for (const [status, count] of Object.entries(totals.jobs)) {
        expect(count).toBe(jobs.filter((job) => job.job_status === status).length);
      }
    } finally {
      await one.close();
      if (two !== one) await two.close();
    }
  });
});
