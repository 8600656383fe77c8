import { openPostgresStore } from '../../src/store/postgres/index.js';
import { postgresDatabases } from '../setup/databases.js';
import { storeSuite } from './store.suite.js';

const database = postgresDatabases();

storeSuite('PostgreSQL', async () => openPostgresStore(await database()));
