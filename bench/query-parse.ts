/**
 * Parse + compile speed of the query language: the reference page's longest example (goal: under
 * 20 µs on average), and the slowest of many random queries of up to 4 KiB, valid or not (goal:
 * none over 1 ms). "Compile" is the device filter to SQL text and parameters, as a list runs it.
 */
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { DummyDriver, Kysely, SqliteAdapter, SqliteIntrospector, SqliteQueryCompiler, sql } from 'kysely';
import { MAX_QUERY_LENGTH, parseQuery, type QueryNode, serializeQuery } from '../src/query/index.js';
import { deviceWhere } from '../src/store/sql/filters.js';
import { arbQuery } from '../test/query/arbitraries.js';
import { REFERENCE_QUERY } from './generate.js';

const AVERAGE_GOAL_US = 20;
const WORST_GOAL_MS = 1;
const ITERATIONS = 100_000;
const RANDOM_QUERIES = 3_000;

const compiler = new Kysely<unknown>({
  dialect: {
    createAdapter: () => new SqliteAdapter(),
    createDriver: () => new DummyDriver(),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  },
});

/** Parses and compiles `text` to SQL; a query error counts as done. */
function parseAndCompile(text: string): number {
  let node: QueryNode | null;
  try {
    node = parseQuery(text, 'devices');
  } catch {
    return 0;
  }
  if (node === null) return 0;
  return sql`SELECT d.id FROM devices d WHERE ${deviceWhere(node, 'sqlite', Date.now())}`.compile(compiler)
    .sql.length;
}

/** Random texts up to the 4 KiB limit: long valid queries, deep nesting, long literals, token soup. */
function randomQueries(): string[] {
  const pieces = fc.sample(arbQuery('devices', 4).map(serializeQuery), { numRuns: 20_000, seed: 42 });
  const random = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { numRuns: RANDOM_QUERIES * 8, seed: 7 });
  let next = 0;
  const pick = <T>(items: readonly T[]): T =>
    items[(random[next++ % random.length] as number) % items.length] as T;
  const fill = (make: () => string): string => {
    let text = make();
    for (;;) {
      const more = `${text} ${pick(['and', 'or'])} ${make()}`;
      if (Buffer.byteLength(more) > MAX_QUERY_LENGTH) return text;
      text = more;
    }
  };
  const queries: string[] = [];
  for (let i = 0; i < RANDOM_QUERIES; i++) {
    switch (i % 5) {
      case 0:
        queries.push(fill(() => pick(pieces)));
        break;
      case 1:
        queries.push(fill(() => `(${pick(pieces)})`));
        break;
      case 2: {
        const depth = 1 + (i % 63);
        queries.push(`${'not ('.repeat(depth)}${pick(pieces)}${')'.repeat(depth)}`);
        break;
      }
      case 3:
        queries.push(`name = '${"x''".repeat(1300)}'`.slice(0, MAX_QUERY_LENGTH));
        break;
      default:
        queries.push(
          fill(() =>
            pick(['name', '=', "'a'", '(', ')', 'and', 'or', 'not', '0x1F', '-2h', 'empty', 'tags', '<>']),
          ),
        );
    }
  }
  return queries;
}

export function runQueryParse(log: (line: string) => void = console.log): boolean {
  for (let i = 0; i < 10_000; i++) parseAndCompile(REFERENCE_QUERY);
  const started = performance.now();
  for (let i = 0; i < ITERATIONS; i++) parseAndCompile(REFERENCE_QUERY);
  const averageUs = ((performance.now() - started) * 1000) / ITERATIONS;

  const queries = randomQueries();
  for (const text of queries) parseAndCompile(text);
  // Each query's time is the median of a few runs, so that a GC pause or the scheduler of a busy
  // machine does not pass for the cost of the query.
  let worstMs = 0;
  let worstText = '';
  for (const text of queries) {
    const times: number[] = [];
    for (let run = 0; run < 5; run++) {
      const before = performance.now();
      parseAndCompile(text);
      times.push(performance.now() - before);
    }
    const elapsed = times.sort((a, b) => a - b)[2] as number;
    if (elapsed > worstMs) {
      worstMs = elapsed;
      worstText = text;
    }
  }
  log(`\nquery parse + compile to SQL (devices, SQLite):`);
  log(
    `  reference example, average of ${ITERATIONS}: ${averageUs.toFixed(2)} µs (goal < ${AVERAGE_GOAL_US} µs)`,
  );
  log(`    ${REFERENCE_QUERY}`);
  log(
    `  worst of ${queries.length} random queries ≤ 4 KiB (median of 5 runs each): ${worstMs.toFixed(3)} ms (goal < ${WORST_GOAL_MS} ms)`,
  );
  log(
    `    the worst: ${Buffer.byteLength(worstText)} bytes, starting ${JSON.stringify(worstText.slice(0, 60))}`,
  );
  return averageUs < AVERAGE_GOAL_US && worstMs < WORST_GOAL_MS;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = runQueryParse() ? 0 : 1;
}
