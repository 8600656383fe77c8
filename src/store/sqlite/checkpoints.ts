import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How often the WAL's size is looked at, and (once checkpoints run) how often they run. */
const CHECK_MS = 1_000;
/** The WAL size from which checkpoints run: SQLite's own default, 1,000 pages of 4 KiB. */
const CHECKPOINT_FROM_BYTES = 4 * 1024 * 1024;

/** Runs in the worker: its own connection, a passive checkpoint every CHECK_MS. */
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
const connection = new Database(workerData.path, { fileMustExist: true });
for (const pragma of workerData.pragmas) connection.pragma(pragma);
setInterval(() => {
  try {
    connection.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // busy or out of space: the next one catches up, and the writer's commits are unaffected
  }
}, workerData.everyMs);
`;

/**
 * WAL checkpoints in a worker thread instead of in the writer's commits. SQLite checkpoints when
 * a commit finds the WAL past 1,000 pages: that commit then copies the WAL into the database and
 * syncs it, on the event loop (100–200 ms here; commits of the load mix otherwise take well under
 * 1 ms). The writer's automatic checkpoints are off (`wal_autocheckpoint = 0`), and these passive
 * ones never wait for, nor hold up, the writer or the readers. The worker starts only once the WAL
 * is that large: a store that writes little (a test, a CLI command) starts none, and SQLite
 * checkpoints the WAL when the store closes.
 */
export class WalCheckpoints {
  readonly #walPath: string;
  #timer: NodeJS.Timeout | undefined;
  #worker: Worker | undefined;
  #closed = false;

  constructor(
    private readonly path: string,
    private readonly pragmas: readonly string[],
  ) {
    this.#walPath = `${path}-wal`;
    this.#watch();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#worker?.terminate();
  }

  #watch(): void {
    this.#timer = setInterval(() => this.#startWhenLarge(), CHECK_MS);
    this.#timer.unref();
  }

  #startWhenLarge(): void {
    let size: number;
    try {
      size = statSync(this.#walPath).size;
    } catch {
      return;
    }
    if (size < CHECKPOINT_FROM_BYTES) return;
    clearInterval(this.#timer);
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve('better-sqlite3'),
        path: this.path,
        pragmas: this.pragmas,
        everyMs: CHECK_MS,
      },
    });
    // Checkpoints never keep the process alive.
    this.#worker.unref();
    this.#worker.on('error', () => {
      // started again at the next look, so that the WAL never grows without bound
      this.#worker = undefined;
      if (!this.#closed) this.#watch();
    });
  }
}
