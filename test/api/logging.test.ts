import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { basic, type Caller, deviceId, Harness, PASSWORD } from './harness.js';

describe('request logs and X-Request-Id', () => {
  let h: Harness;
  let alice: Caller;
  let lines: string[] = [];
  const records = () => lines.map((line) => JSON.parse(line) as Record<string, unknown>);

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    h = await Harness.start({ logger: pino({ level: 'info' }, sink) });
    alice = await h.user('acme', 'alice');
  });
  beforeEach(() => {
    lines = [];
  });
  afterAll(() => h.close());

  it('writes one JSON line per request: method, route template, status, duration, account, request id', async () => {
    const response = await h.get(alice, '/ws/v1/jobs/987');
    expect(response.statusCode).toBe(404);
    const id = response.headers['x-request-id'];
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const requests = records().filter((record) => record.msg === 'request');
    expect(requests).toHaveLength(1);
    expect(requests[0]).toMatchObject({
      level: 30,
      request_id: id,
      method: 'GET',
      route: '/ws/v1/jobs/:id',
      status: 404,
      account: alice.accountId,
      username: 'alice',
    });
    expect(requests[0]?.duration_ms).toEqual(expect.any(Number));
  });

  it('takes a sane X-Request-Id from the client and replaces any other', async () => {
    const given = await h.get(alice, '/ws/v1/jobs', { 'x-request-id': 'trace-42.a_b' });
    expect(given.headers['x-request-id']).toBe('trace-42.a_b');
    expect(records().find((record) => record.msg === 'request')?.request_id).toBe('trace-42.a_b');
    for (const bad of ['has spaces', 'x'.repeat(200), 'quote"s']) {
      const replaced = await h.get(alice, '/ws/v1/jobs', { 'x-request-id': bad });
      expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
    const unknown = await h.get(null, '/no/such/route');
    expect(unknown.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs failed logins with the username, never the password', async () => {
    await h.get(null, '/ws/v1/jobs', basic('alice', 'not-the-password'));
    await h.get(null, '/ws/v1/jobs', { 'x-api-key-id': 'key-1', 'x-api-key-secret': 'secret-value' });
    await h.get(null, '/ws/v1/jobs');
    const failures = records().filter((record) => record.msg === 'login failed');
    expect(failures).toHaveLength(2);
    expect(failures[0]).toMatchObject({ level: 40, username: 'alice' });
    expect(failures[1]).toMatchObject({ api_key_id: 'key-1' });
    const all = lines.join('\n');
    for (const secret of ['not-the-password', 'secret-value', PASSWORD]) expect(all).not.toContain(secret);
  });

  it('logs jobs created and canceled', async () => {
    await h.devices(alice, 1);
    const job = await h.job(alice, { targets: { devices: [deviceId(1)] } });
    await h.put(alice, `/ws/v1/jobs/cancel/${job.id}`);
    expect(records().find((record) => record.msg === 'job created')).toMatchObject({
      job: job.id,
      job_type: 'reboot',
      targets: 1,
    });
    expect(records().find((record) => record.msg === 'jobs canceled')).toMatchObject({ jobs: [job.id] });
  });
});
