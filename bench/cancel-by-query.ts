/**
 * Cancel by query of 100,000 in-progress jobs (one in-progress target each), then the same with
 * force (their counts move), on SQLite and on
 * PostgreSQL (a throw-away embedded one): how long it takes, how many statements it ran (a bounded
 * number per slice, not one round trip per job) and the worst event-loop delay meanwhile. The jobs
 * are inserted in bulk by SQL (not 100,000 API calls).
 *
 *   npx tsx bench/cancel-by-query.ts [--store sqlite|postgres|both] [--jobs 100000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type Kysely, sql } from 'kysely';
import { parseQuery } from '../src/query/index.js';
import { openPostgresDatabase } from '../src/store/postgres/database.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import type { Database } from '../src/store/sql/schema.js';
import { openSqliteDatabase } from '../src/store/sqlite/database.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/store.js';
import { startEmbeddedPostgres } from '../test/setup/embedded-postgres.js';
import { measured } from './by-query-stall.js';

const { values } = parseArgs({
  options: { store: { type: 'string', default: 'both' }, jobs: { type: 'string', default: '100000' } },
});
const JOBS = Number(values.jobs);
const DEVICES = 1_000;
const SEED_CHUNK = 1_000;
const NOW = Date.UTC(2026, 11, 1);

const deviceId = (n: number) => `00000000-00000000-00000000-${n.toString(16).toUpperCase().padStart(8, '0')}`;

/** An account, its devices, and JOBS in-progress jobs of one in-progress target each, in bulk. */
async function seed(db: Kysely<Database>): Promise<number> {
  const { id: account } = await db
    .insertInto('accounts')
    .values({ name: 'bench', created_at: NOW })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db
    .insertInto('devices')
    .values(
      Array.from({ length: DEVICES }, (_, n) => ({
        id: deviceId(n),
        customer_id: account,
        token_hash: 'hash',
        connection_status: 'connected',
      })),
    )
    .execute();
  // A numbers table by a recursive CTE: the same SQL on both engines. In statements of SEED_CHUNK
  // jobs: PostgreSQL's store totals (a row trigger) update the same rows once per job, and each
  // update walks the row versions the same transaction left before it, so one statement of
  // 100,000 jobs ran over 8 minutes (20,000: 87 s).
  for (let from = 0; from < JOBS; from += SEED_CHUNK) {
    await sql`insert into jobs (customer_id, username, job_type, job_status, job_submit_time,
        target_count, progress_pending, timeout, offline_timeout, targets)
      with recursive n(i) as (select 1 union all select i + 1 from n where i < ${Math.min(SEED_CHUNK, JOBS - from)})
      select ${account}, 'bench', 'reboot', 'in_progress', ${NOW}, 1, 1, 600, 86400, '{"all":true}' from n`.execute(
      db,
    );
  }
  const { min } = await db
    .selectFrom('devices')
    .select((eb) => eb.fn.min('pk').as('min'))
    .executeTakeFirstOrThrow();
  await sql`insert into job_targets (job_id, device_id, device_pk, status, queued_time, start_time, deadline, attempt)
    select j.id, d.id, d.pk, 'in_progress', ${NOW}, ${NOW}, ${NOW + 600_000}, 1
    from jobs j join devices d on d.pk = ${Number(min)} + j.id % ${DEVICES}`.execute(db);
  return account;
}

async function run(engine: string, open: (onQuery: () => void) => Promise<Store>): Promise<void> {
  let statements = 0;
  const store = await open(() => {
    statements++;
  });
  try {
    const account = (await store.ensureAccount('bench', NOW)).id;
    const cancels = [
      // in-progress targets are sent a cancel: counts do not move yet
      { label: 'cancel', query: "job_status = 'in_progress'", force: false },
      // the same targets canceled at once: every job's counts move
      { label: 'cancel with force', query: "job_status = 'canceled'", force: true },
    ];
    for (const { label, query: text, force } of cancels) {
      const query = parseQuery(text, 'jobs');
      if (query === null) throw new Error('empty query');
      statements = 0;
      const { result, ms, worstDelayMs } = await measured(() =>
        store.cancelJobsByQuery(account, query, force, NOW + 1),
      );
      console.log(
        `${engine}: ${label} by query of ${result.count} jobs (skipped ${result.skipped}) in ` +
          `${(ms / 1000).toFixed(1)} s, ${statements} statements (${(result.count / statements).toFixed(1)} jobs per statement); ` +
          `worst event-loop delay ${worstDelayMs.toFixed(0)} ms`,
      );
    }
  } finally {
    await store.close();
  }
}

if (values.store !== 'postgres') {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-cancel-'));
  const path = join(dir, 'fleetjobs.db');
  try {
    const db = await openSqliteDatabase(path);
    const started = performance.now();
    await seed(db);
    await db.destroy();
    console.log(`sqlite: ${JOBS} jobs inserted in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await run('sqlite', (onQuery) => openSqliteStore(path, { onQuery }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
if (values.store !== 'sqlite') {
  const postgres = await startEmbeddedPostgres();
  try {
    const db = await openPostgresDatabase(postgres.url);
    const started = performance.now();
    await seed(db);
    await db.destroy();
    console.log(`postgres: ${JOBS} jobs inserted in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    await run('postgres', (onQuery) => openPostgresStore(postgres.url, onQuery));
  } finally {
    await postgres.stop();
  }
}
