import { type CompiledQuery, Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { queryLog } from '../sql/dialect.js';
import type { Database } from '../sql/schema.js';
import type { OnQuery } from '../store.js';
import { migrations } from './migrations/index.js';

/** Any number, fixed: the advisory lock key nodes take while they migrate. */
const MIGRATION_LOCK_KEY = 0x666c656574; // "fleet"
/** Connections in a store's pool (each node's). */
export const POOL_SIZE = 10;

/** BIGINT (ids, epoch milliseconds, counts) read as numbers: every value the store keeps fits in 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Session settings of the store's connections, whatever the server's defaults:
 * - No parallel workers: the store's statements are short (a page, a keyset batch of an export, a
 *   guarded update), and starting workers for one cost more than it saved — up to 190 ms before
 *   the first row of a page sorted by job_submit_time on a 2-core machine (bench/query-pages.ts),
 *   while the other requests wait for the cores they take.
 * - No JIT: the planner's cost of a page that probes each job's targets is that of every job it
 *   might read (billions), far past jit_above_cost, and compiling it took 208 ms of a 230 ms page
 *   on Debian's PostgreSQL 15 (the reference query of bench/query-pages.ts; 20 ms without).
 * - random_page_cost 1.1 (the default 4 is a spinning disk's): what a page reads is in memory, or
 *   on SSD at worst. At 4 the planner walked 341,000 jobs in id order to merge them with the 2,931
 *   jobs of 100 devices (firmware_version = '9.9.9-rare') rather than look those up: 105 ms, 16 ms
 *   at 1.1.
 */
const SESSION_OPTIONS = '-c max_parallel_workers_per_gather=0 -c jit=off -c random_page_cost=1.1';

/**
 * The rows of `query` read on `pool` as arrays of their columns' values, for the readers that encode
 * them (a JSON page, a CSV batch): no row objects are built to be taken apart again.
 */
export async function readArrays(pool: pg.Pool, query: CompiledQuery): Promise<unknown[][]> {
  return (await pool.query<unknown[]>({ text: query.sql, values: [...query.parameters], rowMode: 'array' }))
    .rows;
}

/**
 * The store's connections to the database at `url`. A connection the server ends while it is idle
 * (a restart, a failover, pg_terminate_backend) is dropped by the pool, and the next statement
 * opens another; unheard, its 'error' would end the process.
 */
export function postgresPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, types, options: SESSION_OPTIONS });
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Kysely on a pool on the database at `url` (or on `pool`), with every pending migration applied.
 * The migrations run under a session advisory lock, so several nodes starting at once migrate one
 * after the other.
 */
export async function openPostgresDatabase(
  url: string | pg.Pool,
  onQuery?: OnQuery,
): Promise<Kysely<Database>> {
  const pool = typeof url === 'string' ? postgresPool(url) : url;
  const db = new Kysely<Database>({
    dialect: new PostgresDialect({ pool }),
    ...queryLog(onQuery),
  });
  try {
    await migrate(pool, db);
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return db;
}

async function migrate(pool: pg.Pool, db: Kysely<Database>): Promise<void> {
  const lock = await pool.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const { error, results } = await new Migrator({
      db,
      provider: { getMigrations: async () => migrations },
    }).migrateToLatest();
    if (error) {
      const failed = results?.find((result) => result.status === 'Error')?.migrationName;
      throw new Error(
        `Migration ${failed ?? ''} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
  } finally {
    await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    lock.release();
  }
}
