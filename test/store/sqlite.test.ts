import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { storeSuite } from './store.suite.js';

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-store-'));
let databases = 0;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

storeSuite('SQLite', () => openSqliteStore(join(folder, `store-${++databases}`, 'fleetjobs.db')));

/** The nice value of each thread of this process (Linux: field 19 of /proc/self/task/<id>/stat). */
const threadNices = (): Map<number, number> =>
  new Map(
    readdirSync('/proc/self/task').map((thread) => {
      const fields = readFileSync(`/proc/self/task/${thread}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return [Number(thread), Number(fields[16])];
    }),
  );

describe('SQLite read workers', () => {
  it.runIf(process.platform === 'linux')(
    'run behind the event loop: their threads niced, its own not',
    async () => {
      const before = threadNices();
      const store = await openSqliteStore(join(folder, 'nice', 'fleetjobs.db'));
      try {
        const read = { accountId: 1, query: null, after: null, limit: 10 } as const;
        await Promise.all([
          store.listJobs({ ...read, order: { field: 'id', direction: 'asc' } }),
          store.listDevices({ ...read, order: { field: 'id', direction: 'asc' } }),
        ]);
        const started = [...threadNices()].filter(([thread]) => !before.has(thread));
        expect(started.filter(([, nice]) => nice === 10).length).toBeGreaterThanOrEqual(1);
        expect(threadNices().get(process.pid)).toBe(0);
      } finally {
        await store.close();
      }
    },
  );
});
