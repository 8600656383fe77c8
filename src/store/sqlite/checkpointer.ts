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

/**
 * WAL frames above which writers that can wait (by-query slices) do (caughtUp), about 40 MB. A
 * delete by query of 59,656 jobs wrote as fast as the checkpoints copied: the WAL was never wholly
 * copied when a write began, so never restarted (SQLite restarts it only then), and grew to 1.7 GB;
 * every page a commit wrote was looked up in a wal-index of ~100 hash segments by then, and slices
 * that committed in 12 ms early on took 90–157 ms (event-loop delay up to 300 ms).
 */
const WAL_FRAMES = 10_000;
/** How long a writer waits for the checkpoints at most (a long read can keep them from finishing). */
const CATCH_UP_MS = 1_000;

/**
 * Checkpoints every everyMs, one after another while a long WAL has frames left to copy, and at
 * once when asked; each reports its counts.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const connection = new Database(workerData.path, { fileMustExist: true });
let timer;
const checkpoint = () => {
  clearTimeout(timer);
  const [{ log, checkpointed }] = connection.pragma('wal_checkpoint(PASSIVE)');
  parentPort.postMessage({ log, checkpointed });
  timer = setTimeout(checkpoint, checkpointed < log && log >= workerData.walFrames ? 0 : workerData.everyMs);
};
parentPort.on('message', checkpoint);
timer = setTimeout(checkpoint, workerData.everyMs);
`;

export interface Checkpointer {
  /**
   * Resolves once a checkpoint made now finds fewer than WAL_FRAMES frames in the WAL, or has
   * copied every frame (or after CATCH_UP_MS): the next write transaction then restarts the WAL.
   */
  caughtUp(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts checkpointing the database at `path`. `onFailure`: the worker stopped on an error (the
 * writer should checkpoint again itself).
 */
export function startCheckpointer(
  path: string,
  onFailure: (error: Error) => void,
  /** WAL_FRAMES, for tests. */
  walFrames = WAL_FRAMES,
): Checkpointer {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      driver: createRequire(import.meta.url).resolve('better-sqlite3'),
      path,
      everyMs: CHECKPOINT_MS,
      walFrames,
    },
  });
  // It never keeps the process alive: closing the store stops it, exiting does too.
  worker.unref();
  let stopping = false;
  /** The callers of caughtUp still waiting, each ended by the next report that satisfies it. */
  const waiting = new Set<(report?: { log: number; checkpointed: number }) => void>();
  worker.on('message', (report: { log: number; checkpointed: number }) => {
    for (const check of waiting) check(report);
  });
  worker.on('error', (error) => {
    for (const check of waiting) check();
    if (!stopping) onFailure(error);
  });
  return {
    caughtUp() {
      if (stopping) return Promise.resolve();
      return new Promise((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiting.delete(check);
          resolve();
        };
        const check = (report?: { log: number; checkpointed: number }) => {
          if (report === undefined || report.log < walFrames || report.checkpointed >= report.log) done();
        };
        const timer = setTimeout(done, CATCH_UP_MS);
        waiting.add(check);
        // A report of the WAL as it is now, not as it was at the last checkpoint.
        worker.postMessage('checkpoint');
      });
    },
    async stop() {
      stopping = true;
      for (const check of waiting) check();
      await worker.terminate();
    },
  };
}
