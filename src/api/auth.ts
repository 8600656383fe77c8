import { createHash, randomBytes } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { User } from '../model/account.js';
import { AppError } from '../model/error.js';
import { hashPassword, randomSecret, verifyApiSecret, verifyPassword } from '../security/hashing.js';
import type { Store } from '../store/store.js';
import { LoginThrottle, TooManyAttempts } from './login-throttle.js';

export const AUTH_REALM = 'Basic realm="fleetjobs"';
const MAX_CACHED = 10_000;

const unauthorized = (message: string) => new AppError(401, message);

const header = (request: FastifyRequest, name: string): string | undefined => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Runs tasks one at a time, in order. scrypt takes a whole core for ~36 ms: hashing one password at
 * a time leaves the other core to everything else even during a flood of logins.
 */
class SerialQueue {
  #tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(task);
    this.#tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Checks HTTP Basic or API-key credentials. scrypt is slow on purpose, so a password that matched
 * is remembered, keyed by the stored hash it matched: the user is still looked up on every request,
 * so a removed user or a changed password stops working at once. Failed passwords are throttled
 * (per client address and per username) before any hashing; a remembered password is not.
 */
export class Authenticator {
  readonly #verified = new Map<string, true>();
  readonly #pending = new Map<string, Promise<boolean>>();
  /** Keeps the cache keys from being a plain hash of the password. */
  readonly #salt = randomBytes(32);
  /** Checked for unknown usernames, so that they cost the same scrypt as known ones (no probing by timing). */
  #decoyHash: Promise<string> | undefined;
  readonly #hashing = new SerialQueue();
  readonly #throttle: LoginThrottle;

  constructor(
    private readonly store: Store,
    now: () => number = Date.now,
  ) {
    this.#throttle = new LoginThrottle(now);
  }

  async authenticate(request: FastifyRequest): Promise<User> {
    const keyId = header(request, 'x-api-key-id');
    const keySecret = header(request, 'x-api-key-secret');
    if (keyId !== undefined || keySecret !== undefined) {
      if (keyId === undefined || keySecret === undefined) {
        throw unauthorized('An API key needs both X-API-KEY-ID and X-API-KEY-SECRET');
      }
      const key = await this.store.findApiKey(keyId);
      if (key === undefined || !verifyApiSecret(keySecret, key.secret_hash)) {
        throw unauthorized('Invalid API key id or secret');
      }
      return key.user;
    }
    const authorization = header(request, 'authorization');
    if (authorization === undefined) {
      throw unauthorized(
        'Authentication required: HTTP Basic, or the X-API-KEY-ID and X-API-KEY-SECRET headers',
      );
    }
    const [scheme = '', encoded = ''] = authorization.trim().split(/\s+/);
    if (scheme.toLowerCase() !== 'basic') {
      throw unauthorized('Unsupported authorization scheme: use HTTP Basic or an API key');
    }
    const decoded = Buffer.from(encoded, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw unauthorized('Malformed Basic credentials: expected base64 of username:password');
    const username = decoded.slice(0, colon);
    const password = decoded.slice(colon + 1);
    const user = await this.store.findUser(username);
    const address = request.ip;
    if (user === undefined) {
      const finish = this.#throttle.begin(address, username);
      await this.#checkDecoy(password).finally(() => finish(false));
      throw unauthorized('Invalid username or password');
    }
    const cacheKey = this.#cacheKey(user.password_hash, password);
    if (this.#verified.has(cacheKey)) {
      this.#throttle.check(address);
    } else {
      const finish = this.#throttle.begin(address, username);
      let matches = false;
      try {
        matches = await this.#passwordMatches(password, user.password_hash, cacheKey);
      } finally {
        finish(matches);
      }
      if (!matches) throw unauthorized('Invalid username or password');
    }
    const { password_hash: _hash, ...plain } = user;
    return plain;
  }

  /** An unknown username costs the same scrypt as a known one (no probing by timing), and never matches. */
  async #checkDecoy(password: string): Promise<void> {
    this.#decoyHash ??= hashPassword(randomSecret());
    const decoyHash = await this.#decoyHash;
    await this.#hashing.run(() => verifyPassword(password, decoyHash));
  }

  #cacheKey(storedHash: string, password: string): string {
    return createHash('sha256')
      .update(this.#salt)
      .update(storedHash)
      .update('\0')
      .update(password)
      .digest('base64');
  }

  async #passwordMatches(password: string, storedHash: string, cacheKey: string): Promise<boolean> {
    let pending = this.#pending.get(cacheKey);
    if (pending === undefined) {
      pending = this.#hashing
        .run(() => verifyPassword(password, storedHash))
        .finally(() => this.#pending.delete(cacheKey));
      this.#pending.set(cacheKey, pending);
    }
    const matches = await pending;
    if (matches) {
      if (this.#verified.size >= MAX_CACHED) {
        const oldest = this.#verified.keys().next();
        if (oldest.done !== true) this.#verified.delete(oldest.value);
      }
      this.#verified.set(cacheKey, true);
    }
    return matches;
  }
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/** Who a refused request claimed to be, for the log: a username or key id, never a secret. */
function claimedIdentity(request: FastifyRequest): Record<string, string> {
  const keyId = header(request, 'x-api-key-id');
  if (keyId !== undefined) return { api_key_id: keyId.slice(0, 128) };
  const [scheme = '', encoded = ''] = (header(request, 'authorization') ?? '').trim().split(/\s+/);
  if (scheme.toLowerCase() !== 'basic') return {};
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? {} : { username: decoded.slice(0, Math.min(colon, 128)) };
}

/** The onRequest hook of every route under `/ws/`: who is asking, and may they do this? */
export function authHook(authenticator: Authenticator) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    try {
      request.user = await authenticator.authenticate(request);
    } catch (error) {
      // A script that says so (the console does) handles a 401 itself: no challenge, so that
      // browsers do not open their own login dialog over its login form.
      const fromScript = request.headers['x-requested-with'] !== undefined;
      if (error instanceof AppError && error.status === 401) {
        if (!fromScript) reply.header('WWW-Authenticate', AUTH_REALM);
        // Without any credentials it is a question (a browser's first request), not a failure.
        const claimed = claimedIdentity(request);
        if (Object.keys(claimed).length > 0)
          request.log.warn({ ...claimed, ip: request.ip, reason: error.message }, 'login failed');
      }
      if (error instanceof TooManyAttempts) reply.header('Retry-After', String(error.retryAfterSeconds));
      throw error;
    }
    if (request.user.role === 'read_only' && !READ_METHODS.has(request.method)) {
      throw new AppError(403, `User ${request.user.username} is read_only: it may only read (GET)`);
    }
  };
}
