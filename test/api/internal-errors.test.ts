import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { JobService } from '../../src/jobs/service.js';
import { hashPassword } from '../../src/security/hashing.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { basic, expectError, PASSWORD } from './harness.js';

describe('an unexpected failure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-api-'));
  let store: Store;
  const logged: string[] = [];
  let app: Awaited<ReturnType<typeof buildApp>>;

  beforeAll(async () => {
    store = await openSqliteStore(join(dir, 'fleetjobs.db'));
    const { id } = await store.ensureAccount('acme', Date.now());
    await store.createUser({
      accountId: id,
      username: 'bob',
      passwordHash: await hashPassword(PASSWORD),
      role: 'user',
      now: Date.now(),
    });
    // A store whose job list breaks with an internal detail that must not reach the client.
    const corrupt = { value: async () => Promise.reject(new Error('SQLITE_CORRUPT: secret table layout')) };
    const broken: Store = Object.create(store, { listJobs: corrupt, listJobsJson: corrupt });
    const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
    app = await buildApp({ store: broken, jobs: new JobService(broken), logger });
  });
  afterAll(async () => {
    await app.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is a 500 with the error body, logged, its message hidden', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/ws/v1/jobs/inventory',
      headers: basic('bob', PASSWORD),
    });
    expect(expectError(response, 500)).toBe('Internal server error');
    expect(response.body).not.toContain('SQLITE');
    expect(logged.join('\n')).toContain('SQLITE_CORRUPT: secret table layout');
  });

  it('leaves other routes working', async () => {
    const response = await app.inject({
      method: 'GET',
      url: '/ws/v1/devices/inventory',
      headers: basic('bob', PASSWORD),
    });
    expect(response.statusCode).toBe(200);
  });
});
