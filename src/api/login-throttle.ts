import { AppError } from '../model/error.js';

const WINDOW_MS = 60_000;
/** Failed password logins allowed per minute from one client address, and for one username. */
export const MAX_FAILURES_PER_ADDRESS = 20;
export const MAX_FAILURES_PER_USERNAME = 10;

/** A 429 that tells the client when to try again (`Retry-After`, whole seconds). */
export class TooManyAttempts extends AppError {
  constructor(readonly retryAfterSeconds: number) {
    super(429, `Too many failed logins: try again in ${retryAfterSeconds} s`);
  }
}

interface Window {
  start: number;
  /** Failures recorded plus attempts still being checked (so parallel attempts cannot overshoot). */
  count: number;
}

class FailureCounter {
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly limit: number,
    private readonly now: () => number,
  ) {}

  /** Milliseconds until `key` may try again, or 0 when it may now. */
  blockedFor(key: string): number {
    const window = this.#current(key);
    if (window === undefined || window.count < this.limit) return 0;
    return window.start + WINDOW_MS - this.now();
  }

  add(key: string, delta: number): void {
    const window = this.#current(key);
    if (window === undefined) {
      if (delta > 0) this.#windows.set(key, { start: this.now(), count: delta });
      return;
    }
    window.count += delta;
    if (window.count <= 0) this.#windows.delete(key);
  }

  #current(key: string): Window | undefined {
    const window = this.#windows.get(key);
    if (window !== undefined && this.now() - window.start >= WINDOW_MS) {
      this.#windows.delete(key);
      return undefined;
    }
    return window;
  }

  /** Drops windows that ended, so an attack with many names or addresses leaves nothing behind. */
  sweep(): void {
    const now = this.now();
    for (const [key, window] of this.#windows) {
      if (now - window.start >= WINDOW_MS) this.#windows.delete(key);
    }
  }
}

/**
 * Limits failed password logins per client address and per username, checked before any password
 * is hashed: an attempt counts from the moment it is let through, and is forgotten again if the
 * password was right.
 */
export class LoginThrottle {
  readonly #byAddress: FailureCounter;
  readonly #byUsername: FailureCounter;
  #lastSweep: number;

  constructor(private readonly now: () => number = Date.now) {
    this.#byAddress = new FailureCounter(MAX_FAILURES_PER_ADDRESS, now);
    this.#byUsername = new FailureCounter(MAX_FAILURES_PER_USERNAME, now);
    this.#lastSweep = now();
  }

  /** Throws TooManyAttempts if the address, or the username when given, is blocked. */
  check(address: string, username?: string): void {
    this.#sweepNowAndThen();
    const wait = Math.max(
      this.#byAddress.blockedFor(address),
      username === undefined ? 0 : this.#byUsername.blockedFor(username),
    );
    if (wait > 0) throw new TooManyAttempts(Math.max(1, Math.ceil(wait / 1000)));
  }

  /** check(), then counts the attempt as failed until its handler is told it succeeded. */
  begin(address: string, username: string): (succeeded: boolean) => void {
    this.check(address, username);
    this.#byAddress.add(address, 1);
    this.#byUsername.add(username, 1);
    return (succeeded) => {
      if (!succeeded) return;
      this.#byAddress.add(address, -1);
      this.#byUsername.add(username, -1);
    };
  }

  #sweepNowAndThen(): void {
    if (this.now() - this.#lastSweep < WINDOW_MS) return;
    this.#lastSweep = this.now();
    this.#byAddress.sweep();
    this.#byUsername.sweep();
  }
}
