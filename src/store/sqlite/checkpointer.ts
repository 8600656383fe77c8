import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * Checkpoints of the WAL on a connection of their own, in a worker thread. SQLite's automatic
 * checkpoint runs in the COMMIT that takes the WAL past 1,000 pages, on the writer's thread: that
 * commit copied the pages into the database file and synced both files, 50–200 ms holding the
 * event loop while the dispatcher timed out a backlog (bench/deadline-backlog.ts). So the writer
 * makes none (wal_autocheckpoint = 0) and a PASSIVE checkpoint, which never waits for the writer
 * or the readers, runs here every CHECKPOINT_MS.
 */
const CHECKPOINT_MS = 250;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const connection = new Database(workerData.path, { fileMustExist: true });
setInterval(() => connection.pragma('wal_checkpoint(PASSIVE)'), workerData.everyMs);
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/**
 * Starts checkpointing the database at `path`. `onFailure`: the worker stopped on an error (the
 * writer should checkpoint again itself).
 */
export function startCheckpointer(path: string, onFailure: (error: Error) => void): Checkpointer {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      path,
      everyMs: CHECKPOINT_MS,
    },
  });
  // It never keeps the process alive: closing the store stops it, exiting does too.
  worker.unref();
  let stopping = false;
  worker.on('error', (error) => {
    if (!stopping) onFailure(error);
  });
  return {
    async stop() {
      stopping = true;
      await worker.terminate();
    },
  };
}
