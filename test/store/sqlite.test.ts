import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { storeSuite } from './store.suite.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-store-'));
let databases = 0;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

storeSuite('SQLite', () => openSqliteStore(join(folder, `store-${++databases}`, 'fleetjobs.db')));
