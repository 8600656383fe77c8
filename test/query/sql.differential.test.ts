/**
 * The differential test of the SQL compiler: for random data sets (missing values, non-ASCII text,
 * LIKE wildcards, deleted devices) and random well-typed queries, the SQL that the store filters
 * compile, run on SQLite (and on PostgreSQL in the `postgres` test project) with the real migrations, selects exactly the devices, targets and jobs
 * that the reference evaluator selects.
 */
import fc from 'fast-check';
import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Device } from '../../src/model/device.js';
import type { Job } from '../../src/model/job.js';
import {
  matchesDevice,
  matchesJob,
  matchesTarget,
  type QueryNode,
  serializeQuery,
} from '../../src/query/index.js';
import { deviceWhere, jobWhere, targetWhere } from '../../src/store/sql/filters.js';
import { TEST_ENGINE } from '../setup/stores.js';
import { ARB_NOW, arbDevice, arbDeviceId, arbJob, arbJobTarget, arbQuery } from './arbitraries.js';
import {
  ACCOUNT,
  type Dataset,
  type EngineTestDatabase,
  openEngineTestDatabase,
  type StoredTarget,
} from './sql-database.js';

/** Where a target points: a device of the data set (by index), or a deleted device with some id. */
const arbTargetRef = (devices: Device[]): fc.Arbitrary<{ id: string; device: number | null }> => {
  const deleted = arbDeviceId().map((id) => ({ id, device: null }));
  if (devices.length === 0) return deleted;
  const existing = fc
    .nat({ max: devices.length - 1 })
    .map((index) => ({ id: (devices[index] as Device).id, device: index as number | null }));
  // A deleted device's id may be registered again: its targets still have no device.
  return fc.oneof({ weight: 4, arbitrary: existing }, deleted);
};

/** One to three targets of `job`, on distinct device ids. */
const arbTargetsOf = (job: Job, devices: Device[]): fc.Arbitrary<StoredTarget[]> =>
  fc
    .uniqueArray(arbTargetRef(devices), { selector: (ref) => ref.id, minLength: 1, maxLength: 3 })
    .chain((refs) =>
      fc.tuple(
        ...refs.map((ref) =>
          arbJobTarget(job.id, ref.id).map((target): StoredTarget => ({ target, device: ref.device })),
        ),
      ),
    );

const arbDataset: fc.Arbitrary<Dataset> = fc
  .uniqueArray(arbDevice(ACCOUNT), { selector: (device) => device.id, maxLength: 8 })
  .chain((devices) =>
    fc
      .uniqueArray(arbJob(ACCOUNT), { selector: (job) => job.id, minLength: 1, maxLength: 6 })
      .chain((jobs) =>
        fc.tuple(...jobs.map((job) => arbTargetsOf(job, devices).map((targets) => ({ job, targets })))),
      )
      .map((jobs) => ({ devices, jobs })),
  );

let database: EngineTestDatabase;

beforeAll(async () => {
  database = await openEngineTestDatabase();
});

afterAll(async () => {
  await database.close();
});

const explain = (node: QueryNode, query: RawBuilder<unknown>): string =>
  `query: ${serializeQuery(node)}\nsql: ${query.compile(database.db).sql}`;

const selectDevices = (where: RawBuilder<SqlBool>) =>
  sql`SELECT d.id FROM devices d WHERE d.customer_id = ${ACCOUNT} AND ${where} ORDER BY d.id`;

const selectTargets = (where: RawBuilder<SqlBool>) =>
  sql`SELECT t.job_id, t.device_id FROM job_targets t LEFT JOIN devices d ON d.pk = t.device_pk
    WHERE ${where} ORDER BY t.job_id, t.device_id`;

const selectJobs = (where: RawBuilder<SqlBool>) =>
  sql`SELECT j.id FROM jobs j WHERE j.customer_id = ${ACCOUNT} AND ${where} ORDER BY j.id`;

const byCodeUnits = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

const deviceOf = (dataset: Dataset, index: number | null): Device | null =>
  index === null ? null : (dataset.devices[index] as Device);

/** Fewer on PostgreSQL, where loading a data set takes a few round trips. */
const RUNS = TEST_ENGINE === 'sqlite' ? 2000 : 300;
const QUERIES_PER_RUN = { minLength: 1, maxLength: 4 };

describe(`compiled SQL on ${TEST_ENGINE} selects what the reference evaluator selects`, () => {
  it('devices', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbDataset,
        fc.array(arbQuery('devices'), QUERIES_PER_RUN),
        async (dataset, queries) => {
          await database.load(dataset);
          for (const node of queries) {
            const query = selectDevices(deviceWhere(node, database.dialect.id, ARB_NOW));
            const expected = dataset.devices
              .filter((device) => matchesDevice(node, device, ARB_NOW))
              .map((device) => device.id)
              .sort(byCodeUnits);
            expect(
              (await database.rows<{ id: string }>(query)).map((row) => row.id),
              explain(node, query),
            ).toEqual(expected);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('job targets, with the devices of deleted targets missing', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbDataset,
        fc.array(arbQuery('targets'), QUERIES_PER_RUN),
        async (dataset, queries) => {
          await database.load(dataset);
          for (const node of queries) {
            const query = selectTargets(targetWhere(node, database.dialect.id, ARB_NOW));
            const expected = dataset.jobs
              .flatMap(({ targets }) => targets)
              .filter(({ target, device }) => matchesTarget(node, target, deviceOf(dataset, device), ARB_NOW))
              .map(({ target }) => `${target.job_id} ${target.device_id}`)
              .sort((a, b) => {
                const [jobA, deviceA] = a.split(' ');
                const [jobB, deviceB] = b.split(' ');
                return Number(jobA) - Number(jobB) || byCodeUnits(deviceA as string, deviceB as string);
              });
            expect(
              (await database.rows<{ job_id: number; device_id: string }>(query)).map(
                (row) => `${row.job_id} ${row.device_id}`,
              ),
              explain(node, query),
            ).toEqual(expected);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('jobs, with every plan for device conditions (probe per job, against the key set, or semi-join from the devices)', async () => {
    const plans = [
      { semiJoinMaxDevices: 0, deviceKeySetMax: 0 },
      { semiJoinMaxDevices: 2, deviceKeySetMax: 0 },
      { semiJoinMaxDevices: 2, deviceKeySetMax: 1000 },
      { semiJoinMaxDevices: 1000, deviceKeySetMax: 0 },
    ];
    await fc.assert(
      fc.asyncProperty(
        arbDataset,
        fc.array(fc.tuple(arbQuery('jobs'), fc.constantFrom(...plans)), QUERIES_PER_RUN),
        async (dataset, queries) => {
          await database.load(dataset);
          for (const [node, plan] of queries) {
            const query = selectJobs(
              await jobWhere(database.db, node, database.dialect, ACCOUNT, ARB_NOW, plan),
            );
            const expected = dataset.jobs
              .filter(({ job, targets }) =>
                matchesJob(
                  node,
                  job,
                  targets.map(({ target, device }) => ({ target, device: deviceOf(dataset, device) })),
                  ARB_NOW,
                ),
              )
              .map(({ job }) => job.id)
              .sort((a, b) => a - b);
            expect(
              (await database.rows<{ id: number }>(query)).map((row) => row.id),
              explain(node, query),
            ).toEqual(expected);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
