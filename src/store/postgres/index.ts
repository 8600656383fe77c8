import { jsonBatch } from '../../model/csv.js';
import { timedCsvReader } from '../sql/dialect.js';
import { createSqlStore } from '../sql/store.js';
import type { OnQuery, Store } from '../store.js';
import { COPY_BATCH, postgresCsvReader } from './csv.js';
import { openPostgresDatabase, postgresPool, readArrays } from './database.js';
import { postgresDialect } from './dialect.js';
import { postgresNotifier } from './notifier.js';

/**
 * The PostgreSQL store: one pool, for reads too. Streamed exports read their keyset batches through
 * it; each batch is one short statement on whichever connection is free, so it never holds up writers.
 * A CSV export's batches are written by PostgreSQL's COPY (csv.ts), `copyBatch` rows each; a JSON
 * page's rows are read as arrays and encoded here.
 */
export async function openPostgresStore(
  url: string,
  onQuery?: OnQuery,
  copyBatch = COPY_BATCH,
): Promise<Store> {
  const pool = postgresPool(url);
  const db = await openPostgresDatabase(pool, onQuery);
  return createSqlStore({
    db,
    dialect: postgresDialect,
    readDb: db,
    csvReader: { rows: copyBatch, ranges: false, read: timedCsvReader(postgresCsvReader(pool), onQuery) },
    jsonReader: timedCsvReader(
      async (query, plan) => jsonBatch(await readArrays(pool, query), plan),
      onQuery,
    ),
    notifier: postgresNotifier(url, db),
    close: () => db.destroy(),
  });
}
