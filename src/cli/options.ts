import { type Command, InvalidArgumentError, Option } from 'commander';
import { openStore, type StoreConfig } from '../store/open.js';
import type { Store } from '../store/store.js';

export const DEFAULT_DB = './data/fleetjobs.db';

/** `--db` and `--database-url`, with their environment variables: every command takes them. */
export function storeOptions(command: Command): Command {
  return command
    .addOption(new Option('--db <path>', 'SQLite database file').env('FLEETJOBS_DB').default(DEFAULT_DB))
    .addOption(
      new Option('--database-url <url>', 'PostgreSQL connection URL (instead of SQLite)').env(
        'FLEETJOBS_DATABASE_URL',
      ),
    );
}

/** What `storeOptions` adds to a command's options. */
export interface StoreOptions {
  db: string;
  databaseUrl?: string;
}

export const storeConfig = (options: StoreOptions): StoreConfig => ({
  db: options.db,
  databaseUrl: options.databaseUrl,
});

/** A TCP port (0 picks a free one). */
export function parsePort(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) {
    throw new InvalidArgumentError(`'${text}' is not a port number (0-65535).`);
  }
  return Number(text);
}

/** Thrown for a reason the user can act on: printed as one line, exit status 1. */
export class UsageError extends Error {}

/** Runs a command's action; any failure is one line on stderr and a non-zero exit. */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await run(...args);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      process.stderr.write(`fleetjobs: ${message.split('\n')[0]}\n`);
      process.exitCode = 1;
    }
  };
}

/** Opens the store for one command and closes it afterwards, whatever happens. */
export async function withStore<T>(options: StoreOptions, run: (store: Store) => Promise<T>) {
  const store = await openStore(storeConfig(options));
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

/** A user or API key as the CLI prints it: `created_at` in ISO 8601. */
export const withIsoCreatedAt = <T extends { created_at: number }>(item: T) => ({
  ...item,
  created_at: new Date(item.created_at).toISOString(),
});

/** Prints a value as JSON on stdout. */
export const printJson = (value: unknown): void => {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
};
