import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { basic, type Caller, expectError, Harness, PASSWORD } from './harness.js';

const URL = '/ws/v1/jobs/inventory';

describe('login throttling (§13)', () => {
  let h: Harness;
  let clock: number;
  let alice: Caller;

  beforeEach(async () => {
    clock = Date.UTC(2026, 11, 1, 12, 0, 0);
    h = await Harness.start({ now: () => clock });
    alice = await h.user('acme', 'alice');
  });
  afterEach(() => h.close());

  const login = (headers: Record<string, string>, remoteAddress = '192.0.2.1') =>
    h.app.inject({ method: 'GET', url: URL, headers, remoteAddress });

  const expectThrottled = async (
    response: Awaited<ReturnType<typeof login>>,
    retryAfter: number,
  ): Promise<void> => {
    expect(expectError(response, 429)).toMatch(/too many failed logins/i);
    expect(response.headers['retry-after']).toBe(String(retryAfter));
  };

  it('after 10 wrong passwords for a username, its next attempts answer 429 for the rest of the minute', async () => {
    for (let i = 0; i < 10; i++) {
      expectError(await login(basic('alice', `wrong ${i}`), `198.51.100.${i}`), 401);
    }
    clock += 15_000;
    await expectThrottled(await login(basic('alice', 'wrong again'), '203.0.113.9'), 45);
    // Even the right password, never verified before, is not checked while the username is blocked.
    await expectThrottled(await login(alice.headers, '203.0.113.10'), 45);
    // Other users are not affected.
    const bob = await h.user('acme', 'bob');
    expect((await login(bob.headers, '203.0.113.9')).statusCode).toBe(200);

    clock += 45_000;
    expect((await login(alice.headers, '203.0.113.10')).statusCode).toBe(200);
  });

  it('a password already verified for the username still works while it is under attack', async () => {
    expect((await login(alice.headers)).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) {
      expectError(await login(basic('alice', `wrong ${i}`), `198.51.100.${i}`), 401);
    }
    await expectThrottled(await login(basic('alice', 'wrong'), '198.51.100.99'), 60);
    expect((await login(alice.headers, '192.0.2.200')).statusCode).toBe(200);
  });

  it('after 20 failures from one address, every password attempt from it answers 429; API keys still work', async () => {
    const key = await h.apiKey('alice');
    for (let i = 0; i < 20; i++) {
      expectError(await login(basic(`nobody${i}`, PASSWORD), '192.0.2.66'), 401);
    }
    clock += 59_000;
    await expectThrottled(await login(basic('nobody-else', PASSWORD), '192.0.2.66'), 1);
    await expectThrottled(await login(alice.headers, '192.0.2.66'), 1);
    // The same user from another address, and an API key from the blocked one, are let in.
    expect((await login(alice.headers, '192.0.2.67')).statusCode).toBe(200);
    const apiKey = { 'x-api-key-id': key.id, 'x-api-key-secret': key.secret };
    expect((await login(apiKey, '192.0.2.66')).statusCode).toBe(200);

    clock += 1_000;
    expectError(await login(basic('nobody-else', PASSWORD), '192.0.2.66'), 401);
  });

  it('parallel wrong passwords cannot get past the limit before their failures are counted', async () => {
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) => login(basic('alice', `wrong ${i}`), `198.51.100.${i}`)),
    );
    const statuses = responses.map((response) => response.statusCode);
    expect(statuses.filter((status) => status === 401)).toHaveLength(10);
    expect(statuses.filter((status) => status === 429)).toHaveLength(20);
  });

  it('right passwords do not count as failures', async () => {
    for (let i = 0; i < 9; i++) expectError(await login(basic('alice', `wrong ${i}`)), 401);
    for (let i = 0; i < 5; i++) expect((await login(alice.headers)).statusCode).toBe(200);
    expectError(await login(basic('alice', 'wrong 10')), 401);
    await expectThrottled(await login(basic('alice', 'wrong 11')), 60);
  });
});
