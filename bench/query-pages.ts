/**
 * A page of 1,000 jobs for the queries of issue 3, on the generated dataset, in-process: the page
 * SQL is written the way the store writes it (account filter, jobWhere, ORDER BY, LIMIT), and each
 * timing includes the plan choice (jobWhere) and reading the rows. Goal: p50 ≤ 50 ms each.
 */
import { fileURLToPath } from 'node:url';
import { type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { parseQuery } from '../src/query/index.js';
import { jobWhere } from '../src/store/sql/filters.js';
import type { Database } from '../src/store/sql/schema.js';
import { openSqliteDatabase } from '../src/store/sqlite/database.js';
import {
  ACCOUNT_ID,
  COMMON_TAG,
  DATASET_NOW,
  ensureDataset,
  RARE_FIRMWARE,
  RARE_TAG,
  REFERENCE_QUERY,
} from './generate.js';

const PAGE_SIZE = 1000;
const RUNS = Number(process.env.BENCH_RUNS ?? 15);
const GOAL_MS = 50;

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

const pageSql = (where: RawBuilder<SqlBool>, order: RawBuilder<unknown>) =>
  sql`SELECT j.* FROM jobs j WHERE j.customer_id = ${ACCOUNT_ID} AND ${where} ${order} LIMIT ${PAGE_SIZE}`;

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))] as number;

interface Row {
  query: string;
  order: string;
  rows: number;
  p50: number;
  max: number;
  explain: string[];
}

async function measure(
  db: Kysely<Database>,
  query: string,
  order: RawBuilder<unknown>,
): Promise<Omit<Row, 'query' | 'order'>> {
  const node = parseQuery(query, 'jobs');
  if (node === null) throw new Error(`empty query ${query}`);
  const times: number[] = [];
  let rows = 0;
  let last: RawBuilder<SqlBool> | null = null;
  for (let run = 0; run <= RUNS; run++) {
    const started = performance.now();
    last = await jobWhere(db, node, 'sqlite', ACCOUNT_ID, DATASET_NOW);
    rows = (await pageSql(last, order).execute(db)).rows.length;
    // The first run warms the page cache.
    if (run > 0) times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const plan = await sql<{
    detail: string;
  }>`EXPLAIN QUERY PLAN ${pageSql(last as RawBuilder<SqlBool>, order)}`.execute(db);
  return {
    rows,
    p50: percentile(times, 0.5),
    max: times[times.length - 1] as number,
    explain: plan.rows.map((row) => row.detail),
  };
}

export async function runQueryPages(log: (line: string) => void = console.log): Promise<boolean> {
  const path = await ensureDataset(log);
  const db = await openSqliteDatabase(path);
  try {
    const results: Row[] = [];
    for (const { label, query } of PAGE_QUERIES) {
      for (const order of ORDERS) {
        const row = { query: label, order: order.label, ...(await measure(db, query, order.sql)) };
        if (process.env.BENCH_VERBOSE)
          log(`${label} / ${order.label}: ${row.p50.toFixed(1)} ms\n  ${row.explain.join('\n  ')}`);
        results.push(row);
      }
    }
    log(`\nquery pages: ${PAGE_SIZE} jobs per page, ${RUNS} runs each, goal p50 ≤ ${GOAL_MS} ms`);
    log('| query | orderby | rows | p50 ms | max ms |');
    log('|---|---|---:|---:|---:|');
    for (const row of results) {
      log(`| ${row.query} | ${row.order} | ${row.rows} | ${row.p50.toFixed(1)} | ${row.max.toFixed(1)} |`);
    }
    for (const { label, query } of PAGE_QUERIES) log(`  ${label}: ${query}`);
    const slowest = results.reduce((a, b) => (b.p50 > a.p50 ? b : a));
    log(`\nEXPLAIN QUERY PLAN of the slowest (${slowest.query}, ${slowest.order}):`);
    for (const line of slowest.explain) log(`  ${line}`);
    return results.every((row) => row.p50 <= GOAL_MS);
  } finally {
    await db.destroy();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = (await runQueryPages()) ? 0 : 1;
}
