import type { CompiledQuery } from 'kysely';
import { type JsonPlan, jsonBatch } from '../../model/csv.js';
import { timedCsvReader } from '../sql/dialect.js';
import { ReadQueue, readKey } from '../sql/read-queue.js';
import { createSqlStore } from '../sql/store.js';
import type { OnQuery, Store } from '../store.js';
import { COPY_BATCH, postgresCsvReader } from './csv.js';
import { openPostgresDatabase, POOL_SIZE, postgresPool, readArrays } from './database.js';
import { postgresDialect } from './dialect.js';
import { postgresNotifier } from './notifier.js';

/**
 * The PostgreSQL store: one pool, for reads too. Streamed exports read their keyset batches through
 * it; each batch is one short statement on whichever connection is free, so it never holds up writers.
 * A CSV export's batches are written by PostgreSQL's COPY (csv.ts), `copyBatch` rows each; a JSON
 * page's rows are read as arrays and encoded here, on at most half the pool's connections at once
 * (the others stay free for writes and the dispatcher), and an identical page still waiting for
 * one joins it (ReadQueue).
 */
const PAGE_CONNECTIONS = Math.max(1, Math.floor(POOL_SIZE / 2));

export async function openPostgresStore(
  url: string,
  onQuery?: OnQuery,
  copyBatch = COPY_BATCH,
): Promise<Store> {
  const pool = postgresPool(url);
  const db = await openPostgresDatabase(pool, onQuery);
  const pages = new ReadQueue(
    PAGE_CONNECTIONS,
    async ({ query, plan }: { query: CompiledQuery; plan: JsonPlan }) =>
      jsonBatch(await readArrays(pool, query), plan),
  );
  return createSqlStore({
    db,
    dialect: postgresDialect,
    readDb: db,
    csvReader: { rows: copyBatch, ranges: false, read: timedCsvReader(postgresCsvReader(pool), onQuery) },
    jsonReader: timedCsvReader(
      (query, plan) => pages.ask({ query, plan }, readKey(query.sql, query.parameters, plan)),
      onQuery,
    ),
    notifier: postgresNotifier(url, db),
    close: () => {
      pages.close(new Error('the store is closed'));
      return db.destroy();
    },
  });
}
