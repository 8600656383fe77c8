/**
 * The rollout tick's cost on a 100,000-target job limited by max_per_minute and max_in_flight: one
 * simulated minute of ticks (600 × 100 ms, on an injected clock) with every device connected and
 * answering at once, measuring the process CPU it takes (the tick, its statements, the statuses
 * applied) and printing the plan of every statement one tick runs.
 *
 *   npx tsx bench/rollout-tick.ts [--store sqlite|postgres|both] [--rate 6000] [--in-flight 500]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CompiledQuery, type Kysely, type KyselyPlugin } from 'kysely';
import { pino } from 'pino';
import { ROLLOUT_TICK_MS, RolloutTicker } from '../src/dispatch/rollouts.js';
import { SETTLE_RULES } from '../src/jobs/rollout/settle.js';
import { openPostgresDatabase } from '../src/store/postgres/database.js';
import { postgresDialect } from '../src/store/postgres/dialect.js';
import type { SqlDialect } from '../src/store/sql/dialect.js';
import { inProcessNotifier } from '../src/store/sql/notifier.js';
import type { Database } from '../src/store/sql/schema.js';
import { createSqlStore } from '../src/store/sql/store.js';
import { openSqliteDatabase } from '../src/store/sqlite/database.js';
import { sqliteDialect } from '../src/store/sqlite/dialect.js';
import type { OutgoingRequest } from '../src/store/store.js';
import { startEmbeddedPostgres } from '../test/setup/embedded-postgres.js';
import { jobForAllDevices } from '../test/store/new-job.js';

const TARGETS = 100_000;
const TICKS = 600;

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'both' },
    rate: { type: 'string', default: '6000' },
    'in-flight': { type: 'string', default: '500' },
  },
});
const rate = Number(values.rate);
const inFlight = Number(values['in-flight']);
const deviceId = (n: number) => `00000000-00000000-00000000-${n.toString(16).toUpperCase().padStart(8, '0')}`;

async function run(engine: string, base: Kysely<Database>, dialect: SqlDialect): Promise<void> {
  let recording = false;
  const statements: CompiledQuery[] = [];
  const plugin: KyselyPlugin = {
    transformQuery(args) {
      if (recording) statements.push(base.getExecutor().compileQuery(args.node, args.queryId));
      return args.node;
    },
    transformResult: async (args) => args.result,
  };
  const db = base.withPlugin(plugin);
  const store = createSqlStore({
    db,
    dialect,
    readDb: db,
    notifier: inProcessNotifier(),
    close: () => base.destroy(),
  });
  let now = Date.UTC(2026, 11, 1);
  const account = (await store.ensureAccount('bench', now)).id;
  for (let start = 0; start < TARGETS; start += 10_000) {
    await store.createDevices(
      account,
      Array.from({ length: 10_000 }, (_, i) => ({ id: deviceId(start + i), token_hash: 'hash' })),
    );
  }
  await base.updateTable('devices').set({ connection_status: 'connected' }).execute();
  const job = await store.createJob(
    jobForAllDevices(account, now, {
      username: 'bench',
      job_type: 'update_firmware',
      timeout: 600,
      offline_timeout: 86_400,
      controls: {
        rollout: { max_per_minute: rate, max_in_flight: inFlight },
        abort: [{ failure: 'any', threshold_percent: 10, min_executed: 100, action: 'cancel' }],
        retry: { failed: 2, delay_seconds: 60 },
        schedule: null,
      },
    }),
  );
  let sent = 0;
  let answered: OutgoingRequest[] = [];
  const ticker = new RolloutTicker({
    store,
    logger: pino({ level: 'silent' }),
    now: () => now,
    outlet: {
      room: () => 64,
      fullDevices: () => [],
      send: (requests) => {
        sent += requests.length;
        answered.push(...requests);
      },
      sendCancels: async () => undefined,
    },
  });
  // Every device answers `successful` one tick after its request.
  const tickOnce = async () => {
    const statuses = answered.map((request) => ({
      device_id: request.device_id,
      job_id: request.job_id,
      report: { status: 'successful' as const },
    }));
    answered = [];
    if (statuses.length > 0) await store.applyStatuses(statuses, now, SETTLE_RULES);
    await ticker.tick();
    now += ROLLOUT_TICK_MS;
  };
  await tickOnce();
  const cpu = process.cpuUsage();
  const started = performance.now();
  for (let tick = 0; tick < TICKS; tick++) await tickOnce();
  const used = process.cpuUsage(cpu);
  const wall = performance.now() - started;
  recording = true;
  await ticker.tick();
  recording = false;
  console.log(
    `${engine}: ${TARGETS} targets, max_per_minute ${rate}, max_in_flight ${inFlight}: ${sent} sent in one simulated minute; ` +
      `CPU ${((used.user + used.system) / 1000).toFixed(0)} ms (user ${(used.user / 1000).toFixed(0)} ms), wall ${wall.toFixed(0)} ms for ${TICKS} ticks`,
  );
  console.log(
    `job after it: ${JSON.stringify(await store.getJob(account, job.id).then((j) => ({ success: j?.progress_success, pending: j?.progress_pending })))}`,
  );
  for (const statement of statements) {
    const plan =
      dialect.id === 'sqlite'
        ? (
            await base.executeQuery<{ detail: string }>(
              CompiledQuery.raw(`EXPLAIN QUERY PLAN ${statement.sql}`, [...statement.parameters]),
            )
          ).rows.map((row) => row.detail)
        : (
            await base.executeQuery<{ 'QUERY PLAN': string }>(
              CompiledQuery.raw(`EXPLAIN ${statement.sql}`, [...statement.parameters]),
            )
          ).rows.map((row) => row['QUERY PLAN']);
    console.log(`\n  ${statement.sql.replace(/\s+/g, ' ')}\n    ${plan.join('\n    ')}`);
  }
  await store.close();
}

if (values.store !== 'postgres') {
  const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-rollout-bench-'));
  await run('SQLite', await openSqliteDatabase(join(folder, 'bench.db')), sqliteDialect);
  rmSync(folder, { recursive: true, force: true });
}
if (values.store !== 'sqlite') {
  const postgres = await startEmbeddedPostgres();
  try {
    await run('PostgreSQL', await openPostgresDatabase(postgres.url), postgresDialect);
  } finally {
    await postgres.stop();
  }
}
