import { openPostgresStore } from '../../src/store/postgres/index.js';
import { CSV_BATCH } from '../../src/store/sql/pages.js';
import { postgresDatabases } from '../setup/databases.js';
import { storeSuite } from './store.suite.js';

const database = postgresDatabases();

// Exports in batches as small as SQLite's, so that the suite's exports end batches where it chose.
storeSuite('PostgreSQL', async () => openPostgresStore(await database(), undefined, CSV_BATCH));
