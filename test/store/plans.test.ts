import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompiledQuery, type Kysely, type KyselyPlugin, sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { SETTLE_RULES } from '../../src/jobs/rollout/settle.js';
import type { QueryNode } from '../../src/query/ast.js';
import { parseQuery } from '../../src/query/index.js';
import { openPostgresDatabase } from '../../src/store/postgres/database.js';
import { postgresDialect } from '../../src/store/postgres/dialect.js';
import type { SqlDialect } from '../../src/store/sql/dialect.js';
import { deviceWhere, jobWhere } from '../../src/store/sql/filters.js';
import { inProcessNotifier } from '../../src/store/sql/notifier.js';
import type { Database } from '../../src/store/sql/schema.js';
import { createSqlStore } from '../../src/store/sql/store.js';
import { openSqliteDatabase } from '../../src/store/sqlite/database.js';
import { sqliteDialect } from '../../src/store/sqlite/dialect.js';
import type { Store } from '../../src/store/store.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { setConnection } from '../setup/presence.js';
import { jobForAllDevices } from './new-job.js';

/**
 * The plan of every statement of the dispatcher's calls and of the default pages: an index search,
 * never a scan of `job_targets` or `jobs` (which hold millions of rows at full scale). A scan of a
 * partial index (only pending targets, only new or claimed jobs) is what those indexes are for.
 */

type Explain = (db: Kysely<Database>, query: CompiledQuery) => Promise<string[]>;

/** SQLite: the plan rows that scan one of the big tables (by name or alias). */
const sqliteScans: Explain = async (db, query) => {
  const { rows } = await db.executeQuery<{ detail: string }>(
    CompiledQuery.raw(`EXPLAIN QUERY PLAN ${query.sql}`, [...query.parameters]),
  );
  return rows
    .map((row) => row.detail)
    .filter((detail) => /^SCAN (job_targets|jobs|t|j|due)\b/.test(detail))
    .filter(
      (detail) =>
        !/USING (COVERING )?INDEX (jobs_new|jobs_in_progress|jobs_claimed|jobs_claim_expiry|job_targets_pending|jobs_rollout)\b/.test(
          detail,
        ),
    );
};

/**
 * PostgreSQL: the sequential scans of the big tables in the generic plan (the one a prepared
 * statement settles on, blind to parameter values), with sequential scans disabled: on tiny test
 * tables the planner prefers them; disabled, they remain only where no index serves.
 */
const postgresScans: Explain = (db, query) =>
  db.connection().execute(async (connection) => {
    await connection.executeQuery(CompiledQuery.raw('SET enable_seqscan = off'));
    const { rows } = await connection.executeQuery<{ 'QUERY PLAN': string }>(
      CompiledQuery.raw(`EXPLAIN (GENERIC_PLAN) ${query.sql}`),
    );
    await connection.executeQuery(CompiledQuery.raw('RESET enable_seqscan'));
    return rows
      .map((row) => row['QUERY PLAN'])
      .filter((line) => /Seq Scan on (job_targets|jobs)\b/.test(line));
  });

/**
 * What keeps a filtered page from being read in order from an index on the filter and the order:
 * `filter` names the column (or expression) the index must be searched on.
 */
type OrderedSearch = (db: Kysely<Database>, query: CompiledQuery, filter: string) => Promise<string[]>;

/** SQLite: a sort of the matches, or no index searched on the filter. */
const sqliteOrderedSearch: OrderedSearch = async (db, query, filter) => {
  const { rows } = await db.executeQuery<{ detail: string }>(
    CompiledQuery.raw(`EXPLAIN QUERY PLAN ${query.sql}`, [...query.parameters]),
  );
  const details = rows.map((row) => row.detail);
  const searched = details.some((detail) =>
    new RegExp(`^SEARCH j USING (COVERING )?INDEX \\S+ \\(customer_id=\\? AND ${filter}=\\?`).test(detail),
  );
  return [
    ...details.filter((detail) => /USE TEMP B-TREE FOR ORDER BY/.test(detail)),
    ...(searched ? [] : [`no index searched on ${filter}: ${details.join(' | ')}`]),
  ];
};

/**
 * PostgreSQL: with sorting disabled, a sort left in the generic plan (no index gives the order),
 * or no index condition on the filter.
 */
const postgresOrderedSearch: OrderedSearch = (db, query, filter) =>
  db.connection().execute(async (connection) => {
    await connection.executeQuery(CompiledQuery.raw('SET enable_sort = off'));
    const { rows } = await connection.executeQuery<{ 'QUERY PLAN': string }>(
      CompiledQuery.raw(`EXPLAIN (GENERIC_PLAN) ${query.sql}`),
    );
    await connection.executeQuery(CompiledQuery.raw('RESET enable_sort'));
    const lines = rows.map((row) => row['QUERY PLAN']);
    const searched = lines.some((line) => /Index Cond:/.test(line) && line.includes(filter));
    return [
      ...lines.filter((line) => /\bSort\b/.test(line)),
      ...(searched ? [] : [`no index searched on ${filter}: ${lines.join(' | ')}`]),
    ];
  });

/** Records every statement a store runs, compiled. */
/** A store on `base` whose statements (reads included) `take` returns. */
function recordedStore(
  base: Kysely<Database>,
  dialect: SqlDialect,
): { store: Store; take(): CompiledQuery[] } {
  const { db, take } = recording(base);
  const store = createSqlStore({
    db,
    readDb: db,
    dialect,
    notifier: inProcessNotifier(),
    close: () => base.destroy(),
  });
  return { store, take };
}

function recording(db: Kysely<Database>): { db: Kysely<Database>; take(): CompiledQuery[] } {
  let queries: CompiledQuery[] = [];
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      queries.push(db.getExecutor().compileQuery(args.node, args.queryId));
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  return {
    db: db.withPlugin(plugin),
    take() {
      const taken = queries;
      queries = [];
      return taken;
    },
  };
}

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-plans-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const engines: [string, () => Promise<Kysely<Database>>, SqlDialect, Explain, OrderedSearch][] = [
  [
    'SQLite',
    () => openSqliteDatabase(join(folder, `plans-${randomUUID()}.db`)),
    sqliteDialect,
    sqliteScans,
    sqliteOrderedSearch,
  ],
  [
    'PostgreSQL',
    async () => openPostgresDatabase(await newPostgresDatabase()),
    postgresDialect,
    postgresScans,
    postgresOrderedSearch,
  ],
];

/** The plan of `query` as the engine explains it, a line a node. */
async function explain(db: Kysely<Database>, dialect: SqlDialect, query: CompiledQuery): Promise<string[]> {
  const prefix = dialect.id === 'postgres' ? 'EXPLAIN' : 'EXPLAIN QUERY PLAN';
  const { rows } = await db.executeQuery<Record<string, string>>(
    CompiledQuery.raw(`${prefix} ${query.sql}`, [...query.parameters]),
  );
  return rows.map((row) => row['QUERY PLAN'] ?? row.detail ?? '');
}

/**
 * An account of `devices` devices, four in five of them on firmware 1.0.79, and as many jobs, each
 * targeting two of them; the planner's statistics taken (PostgreSQL: as autovacuum would).
 */
async function fleetOnFirmware(db: Kysely<Database>, dialect: SqlDialect, devices: number): Promise<number> {
  const now = Date.UTC(2026, 11, 1);
  const { id: account } = await db
    .insertInto('accounts')
    .values({ name: `firmware-${randomUUID()}`, created_at: now })
    .returning('id')
    .executeTakeFirstOrThrow();
  const ids = Array.from(
    { length: devices },
    (_, n) => `00000000-00000000-00000000-${String(n).padStart(8, '0')}`,
  );
  const pks: number[] = [];
  for (let start = 0; start < devices; start += 500) {
    const rows = await db
      .insertInto('devices')
      .values(
        ids.slice(start, start + 500).map((id, n) => ({
          id,
          customer_id: account,
          firmware_version: (start + n) % 5 === 0 ? '2.0.1' : '1.0.79',
          token_hash: 'hash',
        })),
      )
      .returning('pk')
      .execute();
    pks.push(...rows.map((row) => Number(row.pk)));
  }
  for (let start = 0; start < devices; start += 500) {
    const jobs = await db
      .insertInto('jobs')
      .values(
        Array.from({ length: Math.min(500, devices - start) }, (_, n) => ({
          customer_id: account,
          username: 'alice',
          job_type: 'reboot',
          job_status: 'complete',
          description: null,
          job_submit_time: now + start + n,
          job_completion_time: null,
          target_count: 2,
          payload: null,
          timeout: 60,
          offline_timeout: 60,
          targets: '{"all":true}',
          rollout: null,
          abort_rules: null,
          retry: null,
          schedule: null,
          abort_reason: null,
          next_send_at: null,
        })),
      )
      .returning('id')
      .execute();
    await db
      .insertInto('job_targets')
      .values(
        jobs.flatMap(({ id }, n) =>
          [0, 1].map((k) => {
            const device = (2 * (start + n) + k) % devices;
            return {
              job_id: Number(id),
              device_id: ids[device] as string,
              device_pk: pks[device] as number,
              queued_time: now,
            };
          }),
        ),
      )
      .execute();
  }
  if (dialect.id === 'postgres') await sql`ANALYZE`.execute(db);
  return account;
}

describe.each(engines)('%s plans', (name, open, dialect, scans, orderedSearch) => {
  it('dispatcher statements and default pages search indexes, never scan jobs or targets', async () => {
    const base = await open();
    const { store, take } = recordedStore(base, dialect);
    try {
      const now = Date.UTC(2026, 11, 1);
      const account = (await store.ensureAccount('plans', now)).id;
      const ids = ['00000000-00000000-00000000-00000001', '00000000-00000000-00000000-00000002'];
      await store.createDevices(
        account,
        ids.map((id) => ({ id, token_hash: 'hash' })),
      );
      const job = await store.createJob(jobForAllDevices(account, now));
      const rollout = await store.createJob(
        jobForAllDevices(account, now, {
          controls: {
            rollout: { max_per_minute: 120, max_in_flight: 10 },
            abort: [{ failure: 'any', threshold_percent: 50, min_executed: 10, action: 'pause' }],
            retry: { failed: 2, delay_seconds: 5 },
            schedule: null,
          },
        }),
      );
      await setConnection(store, ids[1] as string, 'connected', now);
      take();

      const calls: [string, () => Promise<unknown>][] = [
        ['startNewJobs', () => store.startNewJobs({ node: 'plans', now, expires: now + 5_000 })],
        [
          'setConnections',
          () =>
            store.setConnections(
              ids.map((id, n) => ({
                device_id: id,
                status: n === 1 ? 'disconnected' : 'connected',
                at: now,
                topic_id: id,
                replay: false,
              })),
            ),
        ],
        ['devicesWithRequests', () => store.devicesWithRequests(ids)],
        [
          'updateDeviceStates',
          () => store.updateDeviceStates([{ device_id: ids[0] as string, state: { ip: '10.0.0.1' } }], now),
        ],
        ['takeRequests', () => store.takeRequests(ids[0] as string, now, 100, 0)],
        ['takeJobRequests', () => store.takeJobRequests(job.id, now, 100, '')],
        ['pendingCancels', () => store.pendingCancels(ids[0] as string)],
        [
          'applyStatuses',
          () =>
            store.applyStatuses(
              [
                {
                  device_id: ids[0] as string,
                  job_id: job.id,
                  report: { status: 'in_progress', progress: 5 },
                },
              ],
              now,
            ),
        ],
        ['nextDeadline', () => store.nextDeadline()],
        ['rolloutJobs', () => store.rolloutJobs(1000)],
        ['moveRolloutState', () => store.moveRolloutState(rollout.id, 'running', 'running', now)],
        [
          'takeRolloutRequests',
          () =>
            store.takeRolloutRequests(
              {
                jobId: rollout.id,
                sendSeq: 0,
                limit: 2,
                nextSendAt: () => now + 500,
                afterDeviceId: '',
                skipDeviceIds: [],
              },
              now,
            ),
        ],
        [
          'applyStatuses with retries and abort rules',
          () =>
            store.applyStatuses(
              [{ device_id: ids[0] as string, job_id: rollout.id, report: { status: 'failed' } }],
              now,
              SETTLE_RULES,
            ),
        ],
        ['endRollout', () => store.endRollout(rollout.id, 'stop', now)],
        ['closeRollout', () => store.closeRollout(rollout.id)],
        ['deviceTopicIds', () => store.deviceTopicIds(ids)],
        [
          'heartbeat',
          () =>
            store.heartbeat(
              { id: 'plans', broker: 'external', host: 'h', pid: 1 },
              { node: 'plans', now, expires: now + 5_000 },
            ),
        ],
        [
          'takeOverJobs',
          () => store.takeOverJobs({ node: 'other', now: now + 10_000, expires: now + 15_000 }, 10),
        ],
        ['releaseJob', () => store.releaseJob(job.id, 'other')],
        ['buryDeadNodes', () => store.buryDeadNodes(now + 60_000, { node: 'other', now, expires: now })],
        ['leave', () => store.leave('plans')],
        ['expireTargets', () => store.expireTargets(now + 3_600_000, 100)],
        ...(['id', 'job_submit_time', 'job_completion_time'] as const).map(
          (field): [string, () => Promise<unknown>] => [
            `listJobs orderby ${field}`,
            () =>
              store.listJobs({
                accountId: account,
                query: null,
                order: { field, direction: 'desc' },
                after: null,
                limit: 1000,
              }),
          ],
        ),
        [
          'listTargets',
          () =>
            store.listTargets(job.id, {
              accountId: account,
              query: null,
              order: { field: 'device_id', direction: 'asc' },
              after: null,
              limit: 1000,
            }),
        ],
      ];
      const found: Record<string, string[]> = {};
      for (const [name, call] of calls) {
        await call();
        const statements = take();
        expect(statements.length, name).toBeGreaterThan(0);
        for (const statement of statements) {
          const scanned = await scans(base, statement);
          if (scanned.length > 0) found[`${name}: ${statement.sql}`] = scanned;
        }
      }
      expect(found).toEqual({});
    } finally {
      await store.close();
    }
  });

  it("a user's or a state's jobs, newest first, are read in order from an index (bench/load.ts's pages)", async () => {
    const base = await open();
    const { store, take } = recordedStore(base, dialect);
    try {
      const account = (await store.ensureAccount('plans', Date.UTC(2026, 11, 1))).id;
      const found: Record<string, string[]> = {};
      const username = name === 'SQLite' ? '<expr>' : 'lower(username)';
      for (const [text, filter] of [
        ["job_status = 'in_progress'", 'job_status'],
        ["username = 'user7'", username],
        ["job_status = 'complete' and username = 'user12'", username],
      ] as const) {
        for (const direction of ['desc', 'asc'] as const) {
          take();
          await store.listJobs({
            accountId: account,
            query: parseQuery(text, 'jobs'),
            order: { field: 'job_submit_time', direction },
            after: null,
            limit: 1000,
          });
          for (const statement of take()) {
            const sorted = await orderedSearch(base, statement, filter);
            if (sorted.length > 0)
              found[`${text} by job_submit_time ${direction}: ${statement.sql}`] = sorted;
          }
        }
      }
      expect(found).toEqual({});
    } finally {
      await store.close();
    }
  });

  it("a device condition most devices meet but whose share the planner cannot know (firmware_version endsWith '.79'): a page probes each job's targets in page order, never starts from the devices", async () => {
    const db = await open();
    try {
      const account = await fleetOnFirmware(db, dialect, 3_000);
      const query = parseQuery("firmware_version endsWith '.79'", 'jobs');
      if (query === null) throw new Error('empty query');
      const found: Record<string, string[]> = {};
      // Probing each target's device, and (PostgreSQL) against the set of their keys.
      for (const bounds of [{ semiJoinMaxDevices: 0, deviceKeySetMax: 0 }, { semiJoinMaxDevices: 0 }]) {
        const where = await jobWhere(db, query, dialect, account, Date.UTC(2026, 11, 1), bounds);
        const page = sql`SELECT j.id FROM jobs j WHERE j.customer_id = ${account} AND ${where} ORDER BY j.id DESC LIMIT 1000`;
        const plan = await explain(db, dialect, page.compile(db));
        const unordered = plan.filter((line) =>
          /\bSort\b|Join|HashAggregate|USE TEMP B-TREE FOR ORDER BY/.test(line),
        );
        if (unordered.length > 0) found[JSON.stringify(bounds)] = plan;
      }
      expect(found).toEqual({});
    } finally {
      await db.destroy();
    }
  });

  it("a group's devices are found from an index alone, without reading their rows (what a job query gathers for device.group startsWith)", async () => {
    const db = await open();
    try {
      const account = await fleetOnFirmware(db, dialect, 600);
      const select = sql`SELECT d.pk FROM devices d WHERE d.customer_id = ${account} AND ${deviceWhere(
        parseQuery("group startsWith '/north'", 'devices') as QueryNode,
        dialect.id,
        0,
      )}`;
      const plan = await db.connection().execute(async (connection) => {
        if (dialect.id === 'postgres') await sql`SET enable_seqscan = off`.execute(connection);
        return explain(connection, dialect, select.compile(connection));
      });
      const indexOnly =
        dialect.id === 'postgres'
          ? /Index Only Scan using devices_group_keys/
          : /USING COVERING INDEX devices_group\b/;
      expect(plan.join(' | ')).toMatch(indexOnly);
    } finally {
      await db.destroy();
    }
  });

  it("firmware_version = '1.0.79' (2,400 of 3,000 devices, past a key set's bound of 1,000): the planner's estimate says so, and each target's device is probed instead of gathering them", async () => {
    const db = await open();
    try {
      const account = await fleetOnFirmware(db, dialect, 3_000);
      const query = parseQuery("firmware_version = '1.0.79'", 'jobs');
      if (query === null) throw new Error('empty query');
      const where = await jobWhere(db, query, dialect, account, Date.UTC(2026, 11, 1), {
        semiJoinMaxDevices: 0,
        deviceKeySetMax: 1_000,
      });
      expect(where.compile(db).sql).toMatch(
        /^EXISTS \(SELECT 1 FROM job_targets t JOIN devices d ON d\.pk = t\.device_pk/,
      );
    } finally {
      await db.destroy();
    }
  });
});
