import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { type AppOptions, buildApp } from '../../src/api/app.js';
import { JobService } from '../../src/jobs/service.js';
import type { Role } from '../../src/model/account.js';
import { hashApiSecret, hashPassword, randomId, randomSecret } from '../../src/security/hashing.js';
import type { Store } from '../../src/store/store.js';
import { openTestStore, type TestStoreOptions } from '../setup/stores.js';

export const PASSWORD = 'correct horse battery staple';

export interface Caller {
  username: string;
  accountId: number;
  headers: Record<string, string>;
}

export const basic = (username: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
});

/** A device id made from a number: `00000000-00000000-00000000-0000002A` for 42. */
export const deviceId = (n: number, prefix = 0) =>
  `00000000-00000000-${prefix.toString(16).toUpperCase().padStart(8, '0')}-${n.toString(16).toUpperCase().padStart(8, '0')}`;

/**
 * An API on a fresh store (SQLite, or PostgreSQL in the `postgres` test project), with two accounts: `acme` (users alice (admin), bob (user),
 * reader (read_only)) and `globex` (user mallory).
 */
export class Harness {
  private constructor(
    private readonly dispose: () => Promise<void>,
    readonly store: Store,
    readonly jobs: JobService,
    readonly app: FastifyInstance,
  ) {}

  /** `options`: what else the app is built with (a clock, a logger, a route hook); `store`: the store's options. */
  static async start({
    store: storeOptions,
    ...options
  }: Omit<Partial<AppOptions>, 'store' | 'jobs'> & { store?: TestStoreOptions } = {}): Promise<Harness> {
    const { store, dispose } = await openTestStore(storeOptions);
    const jobs = new JobService(store);
    const app = await buildApp({ ...options, store, jobs });
    return new Harness(dispose, store, jobs, app);
  }

  async close(): Promise<void> {
    await this.app.close();
    await this.dispose();
  }

  async user(account: string, username: string, role: Role = 'user', password = PASSWORD): Promise<Caller> {
    const now = Date.now();
    const { id: accountId } = await this.store.ensureAccount(account, now);
    await this.store.createUser({
      accountId,
      username,
      passwordHash: await hashPassword(password),
      role,
      now,
    });
    return { username, accountId, headers: basic(username, password) };
  }

  async apiKey(username: string): Promise<{ id: string; secret: string }> {
    const user = await this.store.findUser(username);
    if (user === undefined) throw new Error(`no user ${username}`);
    const secret = randomSecret();
    const { id } = await this.store.createApiKey({
      id: randomId(),
      userId: user.id,
      secretHash: hashApiSecret(secret),
      now: Date.now(),
    });
    return { id, secret };
  }

  inject(caller: Caller | null, options: InjectOptions): Promise<LightMyRequestResponse> {
    return this.app.inject({
      ...options,
      headers: { ...(caller?.headers ?? {}), ...(options.headers ?? {}) },
    });
  }

  get(caller: Caller | null, url: string, headers: Record<string, string> = {}) {
    return this.inject(caller, { method: 'GET', url, headers });
  }

  post(caller: Caller | null, url: string, body?: unknown) {
    return this.inject(caller, {
      method: 'POST',
      url,
      ...(body === undefined ? {} : { payload: body as object }),
    });
  }

  put(caller: Caller | null, url: string, body?: unknown) {
    return this.inject(caller, {
      method: 'PUT',
      url,
      ...(body === undefined ? {} : { payload: body as object }),
    });
  }

  delete(caller: Caller | null, url: string) {
    return this.inject(caller, { method: 'DELETE', url });
  }

  /** Registers devices `deviceId(1..count)` in the caller's account through the API. */
  async devices(
    caller: Caller,
    count: number,
    fields: (n: number) => Record<string, unknown> = () => ({}),
    prefix = 0,
  ) {
    const body = Array.from({ length: count }, (_, index) => ({
      id: deviceId(index + 1, prefix),
      ...fields(index + 1),
    }));
    const response = await this.post(caller, '/ws/v1/devices/inventory', body);
    if (response.statusCode !== 201) throw new Error(`devices: ${response.statusCode} ${response.body}`);
    return response.json().list as { id: string; device_token: string }[];
  }

  /** Creates a job through the API and returns its JSON. */
  async job(caller: Caller, body: Record<string, unknown>) {
    const response = await this.post(caller, '/ws/v1/jobs/inventory', { job_type: 'reboot', ...body });
    if (response.statusCode !== 201) throw new Error(`job: ${response.statusCode} ${response.body}`);
    return response.json() as { id: number; job_status: string } & Record<string, unknown>;
  }
}

/** The error body of the contract, checked in full. */
export function expectError(response: LightMyRequestResponse, status: number): string {
  expect(response.statusCode, response.body).toBe(status);
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  const body = response.json() as { error_status: number; error_message: string };
  expect(Object.keys(body).sort()).toEqual(['error_message', 'error_status']);
  expect(body.error_status).toBe(status);
  expect(body.error_message).toEqual(expect.any(String));
  return body.error_message;
}
