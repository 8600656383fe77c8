/**
 * Reads waiting for a connection (SQLite's read workers, PostgreSQL's pool), in the order they were
 * asked for, at most `capacity` of them given out at a time. A read identical to one still waiting
 * (the same `key`) joins it and is answered with it: that statement starts after both were asked
 * for, so it sees every write either could (a statement sees each transaction committed before it
 * began: SQLite under WAL, PostgreSQL under READ COMMITTED). Pages that many clients ask for at once
 * (issue 9's mix, consoles refreshing) are read once per turn. A read already given out is never
 * joined: it may have started before a write the later one must see.
 *
 * A joined read's callers are answered one per turn of the event loop: each answer writes a page
 * (~1–2 ms), and thirty of them answered at once held the loop for the lot. Under bench/load.ts's
 * mix the event loop's delay fell from max 101–134 ms (p99 73–79) to 65–89 ms (p99 51–56).
 */
export class ReadQueue<M, R> {
  readonly #capacity: number;
  readonly #run: (message: M) => Promise<R>;
  #waiting: Waiting<M, R>[] = [];
  /** The reads of #waiting that others may join, by key. */
  #joinable = new Map<string, Waiting<M, R>>();
  #given = 0;
  #closed: Error | undefined;

  constructor(capacity: number, run: (message: M) => Promise<R>) {
    this.#capacity = Math.max(1, capacity);
    this.#run = run;
  }

  /** Answers `message` once read; `key` says what an identical read is (undefined: none is). */
  ask(message: M, key?: string): Promise<R> {
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const joined = key === undefined ? undefined : this.#joinable.get(key);
      if (joined !== undefined) {
        joined.callers.push({ resolve, reject });
        return;
      }
      const read: Waiting<M, R> = { message, key, callers: [{ resolve, reject }] };
      this.#waiting.push(read);
      if (key !== undefined) this.#joinable.set(key, read);
      this.#giveOut();
    });
  }

  /** Answers every read still waiting with `error`, and every later one. */
  close(error: Error): void {
    this.#closed = error;
    for (const read of this.#waiting) for (const caller of read.callers) caller.reject(error);
    this.#waiting = [];
    this.#joinable.clear();
  }

  #giveOut(): void {
    while (this.#given < this.#capacity && this.#waiting.length > 0) {
      const read = this.#waiting.shift() as Waiting<M, R>;
      if (read.key !== undefined) this.#joinable.delete(read.key);
      this.#given++;
      const settled = () => {
        this.#given--;
        this.#giveOut();
      };
      let reading: Promise<R>;
      try {
        reading = this.#run(read.message);
      } catch (error) {
        reading = Promise.reject(error);
      }
      reading.then(
        (reply) => {
          answerInTurns(read.callers, (caller) => caller.resolve(reply));
          settled();
        },
        (error: unknown) => {
          answerInTurns(read.callers, (caller) => caller.reject(error));
          settled();
        },
      );
    }
  }
}

/** Answers the first of `callers` now and each other in a turn of the event loop of its own. */
function answerInTurns<C>(callers: readonly C[], answer: (caller: C) => void, from = 0): void {
  answer(callers[from] as C);
  if (from + 1 < callers.length) setImmediate(() => answerInTurns(callers, answer, from + 1));
}

interface Waiting<M, R> {
  message: M;
  key: string | undefined;
  callers: { resolve(reply: R): void; reject(error: unknown): void }[];
}

/**
 * What makes two reads of `sql` with `parameters` (and `encoding`: how the rows are answered)
 * identical, or undefined when a parameter is not plain text or a number (no read joins it).
 */
export function readKey(sql: string, parameters: readonly unknown[], encoding: unknown): string | undefined {
  const plain = parameters.every(
    (value) => value === null || typeof value === 'string' || typeof value === 'number',
  );
  return plain ? JSON.stringify([sql, parameters, encoding ?? null]) : undefined;
}
