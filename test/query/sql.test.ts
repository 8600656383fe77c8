/**
 * The SQL the compiler writes: its text and parameters for PostgreSQL (whose store comes later),
 * the plan chosen for job queries, values always bound (injection attempts), and SQLite details
 * that the random data of the differential test may not reach.
 */
import fc from 'fast-check';
import {
  type CompiledQuery,
  type DatabaseConnection,
  DummyDriver,
  Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryResult,
  type RawBuilder,
  type SqlBool,
  sql,
} from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../src/model/error.js';
import { matchesDevice, parseQuery, type QueryNode, type Resource } from '../../src/query/index.js';
import { postgresDialect } from '../../src/store/postgres/dialect.js';
import {
  type Dialect,
  deviceWhere,
  jobWhere,
  SEMI_JOIN_MAX_DEVICES,
  targetWhere,
} from '../../src/store/sql/filters.js';
import { sqliteDialect } from '../../src/store/sqlite/dialect.js';
import { ARB_NOW, arbQuery } from './arbitraries.js';
import { device, job } from './fixtures.js';
import { ACCOUNT, openTestDatabase, type TestDatabase } from './sql-database.js';

/**
 * A PostgreSQL "database" that records each statement it is asked and answers `rows`, or to an
 * EXPLAIN, a plan estimating `estimate` rows, found by a `node` (scanning the table unless told).
 */
class AnsweringDriver extends DummyDriver {
  readonly asked: CompiledQuery[] = [];

  constructor(
    /** What it answers: the test may change it. */
    public rows: unknown[],
    private readonly estimate: number,
    private readonly node: string,
  ) {
    super();
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    return {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        this.asked.push(query);
        const plan = { 'QUERY PLAN': [{ Plan: { 'Node Type': this.node, 'Plan Rows': this.estimate } }] };
        return { rows: (query.sql.startsWith('EXPLAIN') ? [plan] : this.rows) as R[] };
      },
      streamQuery: () => {
        throw new Error('not streamed');
      },
    };
  }
}

/** Where PostgreSQL's key set ends. */
const KEY_SET_MAX = postgresDialect.deviceKeySet?.max ?? 0;

const postgres = (rows: unknown[] = [], estimate = rows.length, node = 'Seq Scan') => {
  const driver = new AnsweringDriver(rows, estimate, node);
  const db = new Kysely<unknown>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => driver,
      createIntrospector: (kysely) => new PostgresIntrospector(kysely),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
  return { db, driver };
};

const parse = (text: string, resource: Resource): QueryNode => {
  const node = parseQuery(text, resource);
  if (node === null) throw new Error('empty query');
  return node;
};

/** The statement's text with its whitespace runs made single spaces, and its parameters. */
const compiled = (db: Kysely<unknown>, predicate: RawBuilder<SqlBool>) => {
  const { sql: text, parameters } = predicate.compile(db);
  return { sql: text.replace(/\s+/g, ' '), parameters };
};

describe('PostgreSQL text of device and target queries', () => {
  const { db } = postgres();

  it("group startsWith '/NorthWest' and (connection_status = 'disconnected' or signal_percent < 20)", () => {
    const query = parse(
      "group startsWith '/NorthWest' and (connection_status = 'disconnected' or signal_percent < 20)",
      'devices',
    );
    expect(compiled(db, deviceWhere(query, 'postgres', ARB_NOW))).toEqual({
      sql:
        `((lower("d"."group_path") <> '' AND (lower("d"."group_path") COLLATE "C" >= $1 AND lower("d"."group_path") COLLATE "C" < $2))` +
        ` AND (("d"."connection_status" = $3) OR ("d"."signal_percent" IS NOT NULL AND "d"."signal_percent" < $4)))`,
      parameters: ['/northwest', '/northwesu', 'disconnected', 20],
    });
  });

  it("NAME endsWith 'SS' or Description contains 'x' or name < 'B' or group startsWith 'test/' or last_connect > -1h", () => {
    const query = parse(
      "NAME endsWith 'SS' or Description contains 'x' or name < 'B' or group startsWith 'test/' or last_connect > -1h",
      'devices',
    );
    expect(compiled(db, deviceWhere(query, 'postgres', ARB_NOW))).toEqual({
      sql:
        `(("d"."name" IS NOT NULL AND right(lower("d"."name"), $1) = $2)` +
        ` OR ("d"."description" IS NOT NULL AND strpos(lower("d"."description"), $3) > 0)` +
        ` OR ("d"."name" IS NOT NULL AND lower("d"."name") COLLATE "C" < $4)` +
        ` OR (lower("d"."group_path") <> '' AND (lower("d"."group_path") = $5 OR (lower("d"."group_path") COLLATE "C" >= $6 AND lower("d"."group_path") COLLATE "C" < $7)))` +
        ` OR ("d"."last_connect" IS NOT NULL AND "d"."last_connect" > $8))`,
      parameters: [2, 'ss', 'x', 'b', '/test', '/test/', '/test0', ARB_NOW - 3_600_000],
    });
  });

  it("status = 'queued' and tags <> 'Sensor' and group = empty (a target's device may be deleted)", () => {
    const query = parse("status = 'queued' and tags <> 'Sensor' and group = empty", 'targets');
    expect(compiled(db, targetWhere(query, 'postgres', ARB_NOW))).toEqual({
      sql:
        `(("t"."status" = $1)` +
        ` AND NOT (EXISTS (SELECT 1 FROM device_tags dt WHERE dt.device_pk = "d"."pk" AND lower(dt.tag) = $2))` +
        ` AND NOT ("d"."group_path" IS NOT NULL AND lower("d"."group_path") <> ''))`,
      parameters: ['queued', 'sensor'],
    });
  });

  it('id = 2.5 or target_count < 2.5 or progress_pending >= 0x1F on integer columns binds integers', async () => {
    const query = parse('id = 2.5 or target_count < 2.5 or progress_pending >= 0x1F', 'jobs');
    expect(compiled(db, await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW))).toEqual({
      sql: '((FALSE) OR ("j"."target_count" < $1) OR ("j"."progress_pending" >= $2))',
      parameters: [3, 31],
    });
  });
});

describe('PostgreSQL plans of job queries', () => {
  it("job_status = 'in_progress' and username = 'user7' stays on the jobs table", async () => {
    const { db, driver } = postgres();
    const query = parse("job_status = 'in_progress' and username = 'user7'", 'jobs');
    expect(compiled(db, await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW))).toEqual({
      sql: `(("j"."job_status" = $1) AND (lower("j"."username") = $2))`,
      parameters: ['in_progress', 'user7'],
    });
    expect(driver.asked).toEqual([]);
  });

  it("tags = 'rare': few devices match, so a semi-join from their keys, and nothing else is asked", async () => {
    const { db, driver } = postgres([{ pk: 3 }, { pk: 5 }]);
    const query = parse("tags = 'rare'", 'jobs');
    expect(compiled(db, await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW))).toEqual({
      sql: 'j.id IN (SELECT t.job_id FROM job_targets t WHERE t.device_pk IN ($1, $2))',
      parameters: [3, 5],
    });
    const devices =
      `SELECT d.pk FROM devices d WHERE d.customer_id = $1 AND ("d"."pk" IN` +
      ` (SELECT dt.device_pk FROM device_tags dt WHERE lower(dt.tag) = $2))`;
    expect(
      driver.asked.map(({ sql: text, parameters }) => ({ sql: text.replace(/\s+/g, ' '), parameters })),
    ).toEqual([{ sql: `${devices} LIMIT $3`, parameters: [ACCOUNT, 'rare', SEMI_JOIN_MAX_DEVICES] }]);
  });

  it("firmware_version = '2.0' (more devices than the semi-join's bound, fewer than the key set's): each job's targets are probed against the set of their keys, gathered by the engine", async () => {
    const { db, driver } = postgres([{ pk: 1 }, { pk: 2 }, { pk: 3 }]);
    const query = parse("firmware_version = '2.0'", 'jobs');
    const where = await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW, { semiJoinMaxDevices: 2 });
    expect(compiled(db, where)).toEqual({
      sql:
        'EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = j.id AND (t.device_pk IN (SELECT d.pk FROM devices d' +
        ' WHERE d.customer_id = $1 AND ("d"."firmware_version" IS NOT NULL AND lower("d"."firmware_version") = $2)) OR false) OFFSET 0)',
      parameters: [ACCOUNT, '2.0'],
    });
    // The devices (the semi-join's bound) and the estimate: the keys are not read.
    expect(driver.asked).toHaveLength(2);
  });

  it("group startsWith '/north' (more devices than the key set's bound, found through an index alone): gathered up to the bound for such devices", async () => {
    const query = parse("group startsWith '/north'", 'jobs');
    const plan = async (estimate: number) => {
      const { db } = postgres([{ pk: 1 }, { pk: 2 }], estimate, 'Bitmap Heap Scan');
      return compiled(
        db,
        await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW, { semiJoinMaxDevices: 2 }),
      ).sql;
    };
    const indexedMax = postgresDialect.deviceKeySet?.indexedMax ?? 0;
    expect(indexedMax).toBeGreaterThan(KEY_SET_MAX);
    expect(await plan(indexedMax - 1)).toContain('(t.device_pk IN (SELECT d.pk FROM devices d');
    expect(await plan(indexedMax)).toContain('JOIN devices d ON d.pk = t.device_pk');
  });

  it("tags = 'middling': the set is gathered from the tag's rows, without the devices (a target's device is its job's account's)", async () => {
    const { db, driver } = postgres([{ pk: 1 }, { pk: 2 }, { pk: 3 }]);
    const query = parse("tags = 'middling'", 'jobs');
    const where = await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW, { semiJoinMaxDevices: 2 });
    const tagRows = 'SELECT dt.device_pk FROM device_tags dt WHERE (lower(dt.tag) = $1)';
    expect(compiled(db, where)).toEqual({
      sql: `EXISTS (SELECT 1 FROM job_targets t WHERE t.job_id = j.id AND (t.device_pk IN (${tagRows}) OR false) OFFSET 0)`,
      parameters: ['middling'],
    });
    // The estimate is asked of what is gathered.
    expect(driver.asked.map(({ sql: text }) => text.replace(/\s+/g, ' ')).at(-1)).toBe(
      `EXPLAIN (FORMAT JSON) ${tagRows}`,
    );
  });

  it("job_type = 'reboot' and tags = 'common': many devices match, so each job's targets' tags are probed by device key, without the device row", async () => {
    const { db } = postgres([{ pk: 1 }, { pk: 2 }], KEY_SET_MAX);
    const query = parse("job_type = 'reboot' and tags = 'common'", 'jobs');
    const where = await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW, { semiJoinMaxDevices: 2 });
    expect(compiled(db, where)).toEqual({
      sql:
        `(("j"."job_type" = $1) AND EXISTS (SELECT 1 FROM job_targets t` +
        ` WHERE t.job_id = j.id AND (EXISTS (SELECT 1 FROM device_tags dt WHERE dt.device_pk = "t"."device_pk" AND lower(dt.tag) = $2)) OFFSET 0))`,
      parameters: ['reboot', 'common'],
    });
  });

  /** `tags = 'common'` planned on a database whose devices are too many for the semi-join (two). */
  const commonTag = () => {
    const { db, driver } = postgres([{ pk: 1 }, { pk: 2 }], KEY_SET_MAX);
    const query = parse("tags = 'common'", 'jobs');
    const plan = async (now: number) =>
      compiled(db, await jobWhere(db, query, postgresDialect, ACCOUNT, now, { semiJoinMaxDevices: 2 }));
    return { driver, query, plan };
  };

  it("tags = 'common' again within 10 s: too many devices, known, so the plan is chosen without asking; after 10 s it asks again behind that page, planned as before", async () => {
    const { driver, query, plan } = commonTag();
    const first = await plan(ARB_NOW);
    // The devices (two: the semi-join's bound) and the key set's estimate.
    expect(driver.asked).toHaveLength(2);
    expect(await plan(ARB_NOW + 9_999)).toEqual(first);
    expect(driver.asked).toHaveLength(2);
    // Another store (database) asks for itself.
    const other = postgres([{ pk: 1 }, { pk: 2 }], KEY_SET_MAX);
    await jobWhere(other.db, query, postgresDialect, ACCOUNT, ARB_NOW + 1, { semiJoinMaxDevices: 2 });
    expect(other.driver.asked).toHaveLength(2);
    expect(await plan(ARB_NOW + 10_000)).toEqual(first);
    // Both asked again, behind the page: still too many.
    expect(driver.asked).toHaveLength(4);
    expect(await plan(ARB_NOW + 10_001)).toEqual(first);
    expect(driver.asked).toHaveLength(4);
  });

  it("tags = 'common', asked again after 10 s, now names few devices: the pages after that answer name their keys", async () => {
    const { driver, plan } = commonTag();
    const first = await plan(ARB_NOW);
    driver.rows = [{ pk: 1 }];
    expect(await plan(ARB_NOW + 10_000)).toEqual(first);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await plan(ARB_NOW + 10_001)).toEqual({
      sql: 'j.id IN (SELECT t.job_id FROM job_targets t WHERE t.device_pk IN ($1))',
      parameters: [1],
    });
  });

  it("tags = 'some' (three devices: more than the semi-join's two, fewer than the key set's bound) again within 10 s: planned without asking, the estimate kept as too many is; after 10 s both asked again behind the page", async () => {
    const { db, driver } = postgres([{ pk: 1 }, { pk: 2 }, { pk: 3 }]);
    const query = parse("tags = 'some'", 'jobs');
    const plan = async (now: number) =>
      compiled(db, await jobWhere(db, query, postgresDialect, ACCOUNT, now, { semiJoinMaxDevices: 2 }));
    const keySet = await plan(ARB_NOW);
    expect(keySet.sql).toContain('(t.device_pk IN (SELECT dt.device_pk FROM device_tags dt');
    const explained = () => driver.asked.filter(({ sql: text }) => text.startsWith('EXPLAIN')).length;
    // The devices (the semi-join's bound), the estimate.
    expect(driver.asked).toHaveLength(2);
    expect(await plan(ARB_NOW + 9_999)).toEqual(keySet);
    expect(driver.asked).toHaveLength(2);
    expect(await plan(ARB_NOW + 10_000)).toEqual(keySet);
    expect(driver.asked).toHaveLength(4);
    expect(explained()).toBe(2);
  });

  it("tags = 'common' and firmware_version = '2.0': a condition on more than tags joins the device row", async () => {
    const { db } = postgres([{ pk: 1 }, { pk: 2 }], KEY_SET_MAX);
    const query = parse("tags = 'common' and firmware_version = '2.0'", 'jobs');
    const where = await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW, { semiJoinMaxDevices: 2 });
    expect(compiled(db, where).sql).toMatch(
      /^EXISTS \(SELECT 1 FROM job_targets t JOIN devices d ON d.pk = t.device_pk WHERE t.job_id = j.id AND .*dt.device_pk = "d"."pk"/,
    );
  });

  it("job_status = 'new' and (username = 'bob' or connection_status <> 'connected'): deleted devices match, so targets are probed with a LEFT JOIN", async () => {
    const { db, driver } = postgres();
    const query = parse(
      "job_status = 'new' and (username = 'bob' or connection_status <> 'connected')",
      'jobs',
    );
    expect(compiled(db, await jobWhere(db, query, postgresDialect, ACCOUNT, ARB_NOW))).toEqual({
      sql:
        `(("j"."job_status" = $1) AND ((lower("j"."username") = $2) OR EXISTS (SELECT 1 FROM job_targets t` +
        ` LEFT JOIN devices d ON d.pk = t.device_pk WHERE t.job_id = j.id AND NOT ("d"."connection_status" IS NOT NULL AND "d"."connection_status" = $3) OFFSET 0)))`,
      parameters: ['new', 'bob', 'connected'],
    });
    expect(driver.asked).toEqual([]);
  });
});

describe('values are bound parameters, never SQL text', () => {
  const { db } = postgres([{ pk: 1 }]);
  const resources: Resource[] = ['devices', 'targets', 'jobs'];

  it.each(resources)(
    'no quote of a random %s query reaches the SQL text, in either dialect',
    async (resource) => {
      const database = await openTestDatabase();
      try {
        await fc.assert(
          fc.asyncProperty(
            arbQuery(resource),
            fc.constantFrom<Dialect>('sqlite', 'postgres'),
            async (node, dialect) => {
              const kysely = dialect === 'sqlite' ? database.db : db;
              const where =
                resource === 'devices'
                  ? deviceWhere(node, dialect, ARB_NOW)
                  : resource === 'targets'
                    ? targetWhere(node, dialect, ARB_NOW)
                    : await jobWhere(
                        kysely,
                        node,
                        dialect === 'sqlite' ? sqliteDialect : postgresDialect,
                        ACCOUNT,
                        ARB_NOW,
                      );
              // The compiler writes only the empty text '' itself; every other text is a parameter.
              expect(where.compile(kysely).sql.replaceAll("''", '')).not.toContain("'");
            },
          ),
          { numRuns: 500 },
        );
      } finally {
        await database.close();
      }
    },
  );

  describe('injection attempts on SQLite: 400, or matched literally with the data intact', () => {
    let database: TestDatabase;
    const names = ["'; DROP TABLE jobs; --", "x' OR '1'='1", 'Robert"); DROP TABLE devices;--', 'plain'];

    beforeAll(async () => {
      database = await openTestDatabase();
      database.load({
        devices: names.map((name, index) =>
          device({ id: `00000000-00000000-00000000-0000000${index}`, name, tags: [name] }),
        ),
        jobs: [
          {
            job: job({ id: 1 }),
            targets: [{ target: targetOf(1, '00000000-00000000-00000000-00000000'), device: 0 }],
          },
        ],
      });
    });

    afterAll(async () => {
      await database.close();
    });

    const matchingNames = (text: string): string[] =>
      database
        .rows<{ name: string }>(
          sql`SELECT d.name FROM devices d WHERE d.customer_id = ${ACCOUNT} AND ${deviceWhere(parse(text, 'devices'), 'sqlite', ARB_NOW)} ORDER BY d.pk`,
        )
        .map((row) => row.name);

    it.each([
      ["name = '''; DROP TABLE jobs; --'", ["'; DROP TABLE jobs; --"]],
      ["name = 'x'' OR ''1''=''1'", ["x' OR '1'='1"]],
      ["tags contains 'DROP TABLE'", ["'; DROP TABLE jobs; --", 'Robert"); DROP TABLE devices;--']],
      ["name startsWith 'Robert\"); DROP'", ['Robert"); DROP TABLE devices;--']],
      ["name endsWith '--' and not name contains ''''", ['Robert"); DROP TABLE devices;--']],
    ])('%s', (text, expected) => {
      const before = database.counts();
      expect(matchingNames(text)).toEqual(expected);
      expect(database.counts()).toEqual(before);
      expect(before).toMatchObject({ devices: 4, jobs: 1, job_targets: 1 });
    });

    it.each([
      'id = 1 or 1=1',
      "name = 'x' or 1=1",
      "name = 'x'; DROP TABLE jobs; --",
      '"name" = \'x\'',
      "name' = 'x'",
      "name = 'unterminated",
    ])('%s is 400', (text) => {
      const before = database.counts();
      expect(() => parse(text, 'devices')).toThrow(AppError);
      try {
        parse(text, 'devices');
      } catch (error) {
        expect((error as AppError).status).toBe(400);
      }
      expect(database.counts()).toEqual(before);
    });
  });
});

function targetOf(jobId: number, deviceId: string) {
  return {
    job_id: jobId,
    device_id: deviceId,
    status: 'queued' as const,
    progress: 0,
    message: null,
    response: null,
    queued_time: ARB_NOW,
    start_time: null,
    end_time: null,
    attempt: 0,
    next_attempt_time: null,
  };
}

describe('SQLite: text compares by code point, folding ASCII only, with no wildcards', () => {
  let database: TestDatabase;
  const names = ['a\u0000b', 'ABC', 'abc', 'Ä', 'ä', '\uFFFD', '😀', '%', 'a_c', 'abc%', ''];

  beforeAll(async () => {
    database = await openTestDatabase();
    database.load({
      devices: names.map((name, index) =>
        device({ id: `00000000-00000000-00000000-${String(index).padStart(8, '0')}`, name }),
      ),
      jobs: [],
    });
  });

  afterAll(async () => {
    await database.close();
  });

  it.each([
    ["name endsWith 'b'", ['a\u0000b']],
    ["name startsWith 'a' and name contains 'b'", ['a\u0000b', 'ABC', 'abc', 'abc%']],
    ["name = 'abc'", ['ABC', 'abc']],
    ["name = 'ä'", ['ä']],
    ["name > '\uFFFD'", ['😀']],
    ["name < '\uFFFD' and name >= 'b'", ['Ä', 'ä']],
    ["name contains '%'", ['%', 'abc%']],
    ["name endsWith '_c'", ['a_c']],
    ["name = ''", ['']],
    ['name = empty', ['']],
    ["name <> ''", names.filter((name) => name !== '')],
  ])('%s', (text, expected) => {
    const node = parse(text, 'devices');
    const rows = database.rows<{ name: string }>(
      sql`SELECT d.name FROM devices d WHERE d.customer_id = ${ACCOUNT} AND ${deviceWhere(node, 'sqlite', ARB_NOW)} ORDER BY d.pk`,
    );
    expect(rows.map((row) => row.name)).toEqual(expected);
    // The reference evaluator agrees.
    expect(names.filter((name) => matchesDevice(node, device({ name }), ARB_NOW))).toEqual(expected);
  });
});
