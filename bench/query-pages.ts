/**
 * A page of 1,000 jobs for the queries of issue 3, on the generated dataset, in-process: the page
 * SQL is written the way the store writes it (the columns of a job in a list, account filter,
 * jobWhere, ORDER BY, LIMIT), and each timing includes the plan choice (jobWhere) and reading the
 * rows. Goal: p50 ≤ 50 ms each; with `--store both`, PostgreSQL's p50 within 1.5 × SQLite's too
 * (same data, same run, the engines taking turns). Beside each p50 it prints the p50 of the plan
 * choice alone (jobWhere: the statements reading a device condition's keys, on PostgreSQL a round
 * trip each), and each engine's p50 of `SELECT 1`: the floor under a page, to read the ratio of a
 * small page by.
 *
 *   npx tsx bench/query-pages.ts [--store sqlite|postgres|both] [--database-url URL]
 *   (PostgreSQL: bench/postgres-data.ts; BENCH_VERBOSE=1 prints every plan)
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { parseQuery } from '../src/query/index.js';
import { openPostgresDatabase } from '../src/store/postgres/database.js';
import { postgresDialect } from '../src/store/postgres/dialect.js';
import type { SqlDialect } from '../src/store/sql/dialect.js';
import { type Dialect, jobWhere } from '../src/store/sql/filters.js';
import { JOB_COLUMNS } from '../src/store/sql/rows.js';
import type { Database } from '../src/store/sql/schema.js';
import { openSqliteDatabase } from '../src/store/sqlite/database.js';
import { sqliteDialect } from '../src/store/sqlite/dialect.js';
import {
  ACCOUNT_ID,
  COMMON_TAG,
  DATASET_NOW,
  ensureDataset,
  RARE_FIRMWARE,
  RARE_TAG,
  REFERENCE_QUERY,
} from './generate.js';
import { ensurePostgresDataset } from './postgres-data.js';

const PAGE_SIZE = 1000;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const GOAL_MS = 50;
/** PostgreSQL's p50 of a page at most this many times SQLite's. */
const GOAL_POSTGRES_RATIO = 1.5;

export const PAGE_QUERIES: readonly { label: string; query: string }[] = [
  { label: 'reference complex query', query: REFERENCE_QUERY },
  {
    label: 'same + 0.01 % of devices',
    query: `${REFERENCE_QUERY} and firmware_version = '${RARE_FIRMWARE}'`,
  },
  { label: 'rare tag', query: `tags = '${RARE_TAG}'` },
  { label: 'common tag', query: `tags = '${COMMON_TAG}'` },
  { label: 'status and user', query: "job_status = 'in_progress' and username = 'user7'" },
];

const ORDERS = [
  { label: 'id desc', sql: sql`ORDER BY j.id DESC` },
  { label: 'job_submit_time asc', sql: sql`ORDER BY j.job_submit_time ASC, j.id ASC` },
] as const;

const COLUMNS = sql.join(JOB_COLUMNS.map((column) => sql.ref(`j.${column}`)));

const pageSql = (where: RawBuilder<SqlBool>, order: RawBuilder<unknown>) =>
  sql`SELECT ${COLUMNS} FROM jobs j WHERE j.customer_id = ${ACCOUNT_ID} AND ${where} ${order} LIMIT ${PAGE_SIZE}`;

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] as number;

interface Row {
  query: string;
  order: string;
  rows: number;
  p50: number;
  /** The p50 of jobWhere alone. */
  choice: number;
  max: number;
  explain: string[];
}

/** The plan of a page, as the engine explains it. */
const EXPLAIN: Record<Dialect, (db: Kysely<Database>, page: RawBuilder<unknown>) => Promise<string[]>> = {
  sqlite: async (db, page) =>
    (await sql<{ detail: string }>`EXPLAIN QUERY PLAN ${page}`.execute(db)).rows.map((row) => row.detail),
  postgres: async (db, page) =>
    (await sql<{ 'QUERY PLAN': string }>`EXPLAIN (ANALYZE, BUFFERS) ${page}`.execute(db)).rows.map(
      (row) => row['QUERY PLAN'],
    ),
};

/** An engine under measure: its dialect and an open database holding the dataset. */
interface Engine {
  dialect: SqlDialect;
  db: Kysely<Database>;
}

/**
 * The page of `query` in `order` on each engine, the engines taking turns run by run: on a shared
 * machine the load then weighs on each alike, and their ratio holds however it drifts.
 */
async function measure(
  engines: readonly Engine[],
  query: string,
  order: RawBuilder<unknown>,
): Promise<Omit<Row, 'query' | 'order'>[]> {
  const node = parseQuery(query, 'jobs');
  if (node === null) throw new Error(`empty query ${query}`);
  const times = engines.map((): number[] => []);
  const choices = engines.map((): number[] => []);
  const rows = engines.map(() => 0);
  const last: RawBuilder<SqlBool>[] = [];
  for (let run = 0; run <= RUNS; run++) {
    for (const [index, { db, dialect }] of engines.entries()) {
      const started = performance.now();
      const where = await jobWhere(db, node, dialect, ACCOUNT_ID, DATASET_NOW);
      const chosen = performance.now();
      rows[index] = (await pageSql(where, order).execute(db)).rows.length;
      // The first run warms the page cache.
      if (run > 0) {
        times[index]?.push(performance.now() - started);
        choices[index]?.push(chosen - started);
      }
      last[index] = where;
    }
  }
  return Promise.all(
    engines.map(async ({ db, dialect }, index) => {
      const sorted = (times[index] as number[]).sort((a, b) => a - b);
      return {
        rows: rows[index] as number,
        p50: percentile(sorted, 0.5),
        choice: percentile(
          (choices[index] as number[]).sort((a, b) => a - b),
          0.5,
        ),
        max: sorted[sorted.length - 1] as number,
        explain: await EXPLAIN[dialect.id](db, pageSql(last[index] as RawBuilder<SqlBool>, order)),
      };
    }),
  );
}

/**
 * The p50 of a statement that reads nothing (`SELECT 1`) on each engine, the engines taking turns:
 * the floor under every page, which on a loaded machine is most of a small page's time on
 * PostgreSQL (a round trip to another process) and next to none on SQLite (in-process).
 */
async function roundTrips(engines: readonly Engine[]): Promise<number[]> {
  const times = engines.map((): number[] => []);
  for (let run = 0; run <= RUNS; run++) {
    for (const [index, { db }] of engines.entries()) {
      const started = performance.now();
      await sql`SELECT 1`.execute(db);
      if (run > 0) times[index]?.push(performance.now() - started);
    }
  }
  return times.map((each) =>
    percentile(
      each.sort((a, b) => a - b),
      0.5,
    ),
  );
}

async function measureAll(engines: readonly Engine[], log: (line: string) => void): Promise<Row[][]> {
  const results: Row[][] = engines.map(() => []);
  for (const { label, query } of PAGE_QUERIES) {
    for (const order of ORDERS) {
      const measured = await measure(engines, query, order.sql);
      for (const [index, { dialect }] of engines.entries()) {
        const row = {
          query: label,
          order: order.label,
          ...(measured[index] as Omit<Row, 'query' | 'order'>),
        };
        if (process.env.BENCH_VERBOSE)
          log(
            `${dialect.id}: ${label} / ${order.label}: ${row.p50.toFixed(1)} ms\n  ${row.explain.join('\n  ')}`,
          );
        results[index]?.push(row);
      }
    }
  }
  return results;
}

export async function runQueryPages(
  stores: readonly Dialect[] = ['sqlite'],
  databaseUrl?: string,
  log: (line: string) => void = console.log,
): Promise<boolean> {
  const opened: Engine[] = [];
  const closers: (() => Promise<void>)[] = [];
  const measured: Partial<Record<Dialect, Row[]>> = {};
  let floors: number[] = [];
  try {
    if (stores.includes('sqlite')) {
      const db = await openSqliteDatabase(await ensureDataset(log));
      closers.push(() => db.destroy());
      opened.push({ dialect: sqliteDialect, db });
    }
    if (stores.includes('postgres')) {
      const dataset = await ensurePostgresDataset(databaseUrl, log);
      closers.push(() => dataset.stop());
      const db = await openPostgresDatabase(dataset.url);
      closers.push(() => db.destroy());
      opened.push({ dialect: postgresDialect, db });
    }
    const results = await measureAll(opened, log);
    floors = await roundTrips(opened);
    for (const [index, { dialect }] of opened.entries()) measured[dialect.id] = results[index];
  } finally {
    for (const close of closers.reverse()) await close();
  }
  const { sqlite, postgres } = measured;
  const both = sqlite !== undefined && postgres !== undefined;
  log(
    `\nquery pages: ${PAGE_SIZE} jobs per page, ${RUNS} runs each, goal p50 ≤ ${GOAL_MS} ms` +
      (both ? ` and PostgreSQL's p50 ≤ ${GOAL_POSTGRES_RATIO} × SQLite's` : ''),
  );
  const first = (sqlite ?? postgres) as Row[];
  const engines = stores.filter((engine) => measured[engine] !== undefined);
  log(
    `| query | orderby | rows | ${engines.map((engine) => `${engine} p50 ms | ${engine} jobWhere p50 ms | ${engine} max ms`).join(' | ')} |${both ? ' pg/sqlite |' : ''}`,
  );
  log(`|---|---|---:|${engines.map(() => '---:|---:|---:|').join('')}${both ? '---:|' : ''}`);
  let met = true;
  first.forEach((row, index) => {
    const cells = engines.map((engine) => {
      const result = measured[engine]?.[index] as Row;
      met &&= result.p50 <= GOAL_MS;
      return `${result.p50.toFixed(1)} | ${result.choice.toFixed(1)} | ${result.max.toFixed(1)}`;
    });
    let ratio = '';
    if (both) {
      const times = (postgres[index] as Row).p50 / (sqlite[index] as Row).p50;
      met &&= times <= GOAL_POSTGRES_RATIO;
      ratio = ` ${times.toFixed(2)} |`;
    }
    log(`| ${row.query} | ${row.order} | ${row.rows} | ${cells.join(' | ')} |${ratio}`);
  });
  for (const { label, query } of PAGE_QUERIES) log(`  ${label}: ${query}`);
  log(
    `a statement reading nothing (SELECT 1), p50: ${opened.map(({ dialect }, index) => `${dialect.id} ${floors[index]?.toFixed(2)} ms`).join(', ')}`,
  );
  for (const engine of engines) {
    const results = measured[engine] as Row[];
    const slowest = results.reduce((a, b) => (b.p50 > a.p50 ? b : a));
    log(`\n${engine}: the plan of the slowest (${slowest.query}, ${slowest.order}):`);
    for (const line of slowest.explain) log(`  ${line}`);
  }
  return met;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: { store: { type: 'string', default: 'sqlite' }, 'database-url': { type: 'string' } },
  });
  const stores: Dialect[] =
    values.store === 'both' ? ['sqlite', 'postgres'] : [values.store === 'postgres' ? 'postgres' : 'sqlite'];
  process.exitCode = (await runQueryPages(stores, values['database-url'])) ? 0 : 1;
}
