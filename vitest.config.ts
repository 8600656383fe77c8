import { defineConfig } from 'vitest/config';

/**
 * Two projects: every test on SQLite (and the store tests on both engines), and the API and query
 * differential tests again on PostgreSQL (FLEETJOBS_TEST_STORE). One embedded PostgreSQL serves
 * the whole run (test/setup/postgres.ts).
 */
export default defineConfig({
  test: {
    globalSetup: ['test/setup/system-programs.ts', 'test/setup/postgres.ts', 'test/console/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      { extends: true, test: { name: 'sqlite', include: ['test/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'postgres',
          include: [
            'test/api/{auth,bad-input,devices,events,groups,jobs,metrics,monitors,paging,preview,rollout,sci,tenancy}.test.ts',
            'test/query/sql.differential.test.ts',
          ],
          env: { FLEETJOBS_TEST_STORE: 'postgres' },
        },
      },
    ],
  },
});
