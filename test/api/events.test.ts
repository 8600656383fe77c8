import { get, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

interface SseEvent {
  event: string;
  id: string;
  data: Record<string, unknown> & { operation: string; topic: string };
}

/** A live stream read over real HTTP: its events as they arrive, and its comment lines. */
class Stream {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  #buffer = '';
  #waiters: (() => void)[] = [];

  constructor(readonly response: IncomingMessage) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let end = this.#buffer.indexOf('\n\n');
      while (end >= 0) {
        this.#parse(this.#buffer.slice(0, end));
        this.#buffer = this.#buffer.slice(end + 2);
        end = this.#buffer.indexOf('\n\n');
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  #parse(block: string) {
    const fields: Record<string, string> = {};
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else {
        const colon = line.indexOf(':');
        fields[line.slice(0, colon)] = line.slice(colon + 1).trimStart();
      }
    }
    if (fields.data !== undefined) {
      this.events.push({ event: fields.event ?? '', id: fields.id ?? '', data: JSON.parse(fields.data) });
    }
  }

  /** Resolves once `count` events (or comments) arrived. */
  async waitFor(test: () => boolean): Promise<void> {
    while (!test()) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  close() {
    this.response.destroy();
  }
}

describe('the live event stream', () => {
  let h: Harness;
  let alice: Caller;
  let mallory: Caller;
  let base: string;

  beforeAll(async () => {
    h = await Harness.start({ eventTimings: { pollMs: 20, heartbeatMs: 100 } });
    alice = await h.user('acme', 'alice');
    mallory = await h.user('globex', 'mallory');
    await h.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  });
  afterAll(() => h.close());

  const open = (caller: Caller, path: string, headers: Record<string, string> = {}) =>
    new Promise<Stream>((resolve, reject) => {
      get(`${base}${path}`, { headers: { ...caller.headers, ...headers } }, (response) => {
        expect(response.statusCode).toBe(200);
        expect(response.headers['content-type']).toMatch(/^text\/event-stream/);
        resolve(new Stream(response));
      }).on('error', reject);
    });

  it('streams each change of the account as an SSE event (topic, uuid, Msg), and comments to keep alive', async () => {
    const stream = await open(alice, '/ws/v1/events?topics=jobs,devices');
    const theirs = await open(mallory, '/ws/v1/events');
    await h.devices(alice, 2);
    const job = await h.job(alice, { targets: { devices: [deviceId(1)] } });
    await stream.waitFor(() => stream.events.length >= 3);
    expect(stream.events.map((e) => [e.event, e.data.operation, e.data.topic])).toEqual([
      ['devices', 'INSERTION', `${alice.accountId}/devices/${deviceId(1)}`],
      ['devices', 'INSERTION', `${alice.accountId}/devices/${deviceId(2)}`],
      ['jobs', 'INSERTION', `${alice.accountId}/jobs/${job.id}`],
    ]);
    expect(stream.events.every((e) => e.id === e.data.uuid)).toBe(true);
    expect(stream.events[2]?.data.jobs).toMatchObject({ id: job.id, job_status: 'new' });
    await stream.waitFor(() => stream.comments.includes('keep-alive'));
    // Tenants never mix: the other account saw nothing of it.
    await theirs.waitFor(() => theirs.comments.includes('keep-alive'));
    expect(theirs.events).toEqual([]);
    stream.close();
    theirs.close();
  });

  it('filters on job_id, and Last-Event-ID resumes after the last event seen', async () => {
    const [a, b] = [deviceId(11), deviceId(12)];
    await h.post(alice, '/ws/v1/devices/inventory', [{ id: a }, { id: b }]);
    const stream = await open(alice, '/ws/v1/events');
    const first = await h.job(alice, { targets: { devices: [a] } });
    await stream.waitFor(() => stream.events.length >= 1);
    const seen = stream.events[0];
    stream.close();
    // Changes while nobody listens.
    await h.put(alice, `/ws/v1/jobs/cancel/${first.id}`);
    const second = await h.job(alice, { targets: { devices: [b] } });
    const resumed = await open(alice, '/ws/v1/events', { 'Last-Event-ID': seen?.id ?? '' });
    await resumed.waitFor(() => resumed.events.length >= 3);
    expect(resumed.events.map((e) => [e.event, e.data.topic, e.data.operation])).toEqual([
      ['job_targets', `${alice.accountId}/job_targets/${first.id}/${a}`, 'UPDATE'],
      ['jobs', `${alice.accountId}/jobs/${first.id}`, 'UPDATE'],
      ['jobs', `${alice.accountId}/jobs/${second.id}`, 'INSERTION'],
    ]);
    resumed.close();

    const onlySecond = await open(alice, `/ws/v1/events?job_id=${second.id}`);
    await h.put(alice, `/ws/v1/jobs/cancel/${first.id}`);
    await h.put(alice, `/ws/v1/jobs/cancel/${second.id}`);
    await onlySecond.waitFor(() => onlySecond.events.length >= 2);
    expect(onlySecond.events.map((e) => e.data.topic)).toEqual([
      `${alice.accountId}/job_targets/${second.id}/${b}`,
      `${alice.accountId}/jobs/${second.id}`,
    ]);
    onlySecond.close();
  });

  it('stops reading the store once the client has gone', async () => {
    let reads = 0;
    const listEvents = h.store.listEvents;
    h.store.listEvents = (request) => {
      reads++;
      return listEvents(request);
    };
    try {
      const stream = await open(alice, '/ws/v1/events');
      await stream.waitFor(() => reads >= 2);
      stream.close();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const after = reads;
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(reads).toBe(after);
    } finally {
      h.store.listEvents = listEvents;
    }
  });

  it('answers 400 to an unknown topic, 401 without credentials', async () => {
    expect(expectError(await h.get(alice, '/ws/v1/events?topics=alarms'), 400)).toMatch(/alarms/);
    expectError(await h.get(alice, '/ws/v1/events?job_id=x'), 400);
    expectError(await h.get(null, '/ws/v1/events'), 401);
  });
});
