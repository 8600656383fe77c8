import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { Logger } from './dispatcher.js';

interface Queued<T> {
  item: T;
  settle: (error?: unknown) => void;
}

/**
 * Device messages of one kind stored a batch at a time, in arrival order: a batch is taken as soon
 * as the previous one is stored (no timer), with the event loop free between batches. Each
 * message's promise resolves once its batch was written, or rejects with the batch's error.
 */
export class Batches<T> {
  readonly #queue: Queued<T>[] = [];
  #flushing: Promise<void> | null = null;
  readonly #size: number;
  readonly #write: (batch: T[]) => Promise<void>;
  readonly #failed: (error: unknown) => void;
  readonly #emptied: () => void;

  /** `emptied` runs each time the queue was written out. */
  constructor(options: {
    size: number;
    write: (batch: T[]) => Promise<void>;
    emptied?: () => void;
    what: string;
    logger: Logger;
  }) {
    this.#size = options.size;
    this.#write = options.write;
    this.#emptied = options.emptied ?? (() => undefined);
    this.#failed = (error) => options.logger.error({ err: error }, `storing ${options.what} failed`);
  }

  push(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, settle: (error) => (error ? reject(error) : resolve()) });
      this.#flushing ??= this.#flush();
    });
  }

  /** Messages received and not yet taken into a batch. */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Resolves once nothing is queued or being written. */
  async drained(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      await yieldToEventLoop();
      const batch = this.#queue.splice(0, this.#size);
      try {
        await this.#write(batch.map((queued) => queued.item));
        for (const { settle } of batch) settle();
      } catch (error) {
        this.#failed(error);
        for (const { settle } of batch) settle(error);
      }
    }
    this.#flushing = null;
    this.#emptied();
  }
}
