/**
 * Vitest global setup: ONE embedded PostgreSQL for the whole run, shared by every project. Test
 * files get their own database from it through test/setup/databases.ts.
 */
import type { TestProject } from 'vitest/node';
import { type Running, startEmbeddedPostgres } from './embedded-postgres.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The admin URL of the run's PostgreSQL (its `postgres` database). */
    postgresUrl: string;
  }
}

/** Shared by every project of the run (each imports this file anew): one server, stopped by the last. */
const shared = globalThis as {
  fleetjobsPostgres?: Promise<Running>;
  fleetjobsPostgresUsers?: number;
  fleetjobsExitCodeKept?: boolean;
};

/**
 * embedded-postgres stops its servers on `beforeExit` (async-exit-hook), then calls process.exit(0):
 * a run with failed tests exited 0. The code the run had set by then is the one it exits with.
 */
function keepExitCode(): void {
  if (shared.fleetjobsExitCodeKept) return;
  shared.fleetjobsExitCodeKept = true;
  let code: typeof process.exitCode;
  process.prependListener('beforeExit', () => {
    code ??= process.exitCode;
  });
  process.on('exit', () => {
    if (code !== undefined && code !== 0) process.exitCode = code;
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  keepExitCode();
  shared.fleetjobsPostgres ??= startEmbeddedPostgres();
  const running = await shared.fleetjobsPostgres;
  shared.fleetjobsPostgresUsers = (shared.fleetjobsPostgresUsers ?? 0) + 1;
  project.provide('postgresUrl', running.url);
  return async () => {
    shared.fleetjobsPostgresUsers = (shared.fleetjobsPostgresUsers ?? 1) - 1;
    if (shared.fleetjobsPostgresUsers === 0) await running.stop();
  };
}
