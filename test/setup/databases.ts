import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

/** The URL of `database` on the run's PostgreSQL (test/setup/postgres.ts). */
const urlOf = (database: string) => {
  const url = new URL(inject('postgresUrl'));
  url.pathname = `/${database}`;
  return url.toString();
};

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: inject('postgresUrl') });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

/** A new, empty database of its own on the run's PostgreSQL: its URL. */
export async function newPostgresDatabase(): Promise<string> {
  const name = `fleetjobs_${randomBytes(6).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  return urlOf(name);
}

/**
 * The database of this test file, emptied: every table of a previous store truncated (the
 * migrations stay applied). Much faster than a new database for every test.
 */
export function postgresDatabases(): () => Promise<string> {
  let url: Promise<string> | undefined;
  return async () => {
    url ??= newPostgresDatabase();
    const databaseUrl = await url;
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ name: string }>(
        `SELECT quote_ident(tablename) AS name FROM pg_tables
         WHERE schemaname = 'public' AND tablename NOT LIKE 'kysely_%'`,
      );
      if (rows.length > 0) {
        await client.query(`TRUNCATE ${rows.map((row) => row.name).join(', ')} RESTART IDENTITY CASCADE`);
      }
    } finally {
      await client.end();
    }
    return databaseUrl;
  };
}
