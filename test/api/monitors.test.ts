import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { XMLParser } from 'fast-xml-parser';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MonitorDelivery } from '../../src/monitors/delivery.js';
import { Metrics } from '../../src/observability/metrics.js';
import { setConnection } from '../setup/presence.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

/** A receiver: a real HTTP server that keeps every request, answering `status` (or closing when down). */
class Receiver {
  readonly requests: { method: string; headers: IncomingHttpHeaders; body: Buffer }[] = [];
  status = 200;
  down = false;
  private constructor(private readonly server: Server) {}

  static async start(): Promise<Receiver> {
    const receiver: Receiver = new Receiver(
      createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on('data', (chunk: Buffer) => chunks.push(chunk));
        request.on('end', () => {
          if (receiver.down) {
            request.socket.destroy();
            return;
          }
          receiver.requests.push({
            method: request.method ?? '',
            headers: request.headers,
            body: Buffer.concat(chunks),
          });
          response.statusCode = receiver.status;
          response.end();
        });
      }),
    );
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/events`;
  }

  /** The Msg objects of the 2xx-answered JSON batches, in the order received. */
  messages(): Msg[] {
    return this.requests.flatMap((request) => {
      const text = request.headers['content-encoding'] === 'gzip' ? gunzipSync(request.body) : request.body;
      return (JSON.parse(text.toString()) as { Document: { Msg: Msg[] } }).Document.Msg;
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

interface Msg {
  topic: string;
  group: string;
  operation: string;
  timestamp: string;
  uuid: string;
  jobs?: Record<string, unknown>;
  job_targets?: Record<string, unknown>;
  devices?: Record<string, unknown>;
}

/** The delivery's clock: real time plus what a test advanced it by (no sleeping for backoff). */
class Clock {
  offset = 0;
  readonly now = () => Date.now() + this.offset;
  advance(ms: number) {
    this.offset += ms;
  }
}

const silent = pino({ level: 'silent' });

describe('monitors', () => {
  let h: Harness;
  let alice: Caller;
  let mallory: Caller;
  let receiver: Receiver;
  let clock: Clock;
  let delivery: MonitorDelivery;

  beforeAll(async () => {
    h = await Harness.start();
    alice = await h.user('acme', 'alice', 'admin');
    mallory = await h.user('globex', 'mallory');
  });
  afterAll(() => h.close());
  beforeEach(async () => {
    receiver = await Receiver.start();
    clock = new Clock();
    delivery = new MonitorDelivery({ store: h.store, logger: silent, now: clock.now, nodeId: 'node-a' });
    // Each test starts with no monitor of an earlier one.
    for (const caller of [alice, mallory]) {
      const list = (await h.get(caller, '/ws/v1/monitors/inventory')).json().list as { id: number }[];
      for (const { id } of list) await h.delete(caller, `/ws/v1/monitors/inventory/${id}`);
    }
  });
  afterEach(async () => {
    await delivery.stop();
    await receiver.close();
  });

  const createMonitor = async (caller: Caller, body: Record<string, unknown> = {}) => {
    const response = await h.post(caller, '/ws/v1/monitors/inventory', {
      topics: ['jobs', 'job_targets', 'devices'],
      url: receiver.url,
      batch_duration: 1,
      ...body,
    });
    expect(response.statusCode, response.body).toBe(201);
    return response.json() as { id: number } & Record<string, unknown>;
  };

  /** Passes until the receiver has everything (batch_duration of 1 s elapses on the clock). */
  const deliverAll = async () => {
    for (let pass = 0; pass < 50; pass++) {
      clock.advance(1000);
      const before = receiver.requests.length;
      await delivery.pass();
      if (receiver.requests.length === before && pass > 1) return;
    }
  };

  it('creates, shows, lists, changes and deletes monitors; never shows auth_token or secret', async () => {
    const created = await createMonitor(alice, {
      auth_token: 'user:pass',
      secret: 's3cret',
      headers: ['X-Team: ops', 'X-Token: abc'],
      description: 'ops receiver',
    });
    expect(created).toMatchObject({
      customer_id: alice.accountId,
      type: 'http',
      topics: ['jobs', 'job_targets', 'devices'],
      url: receiver.url,
      method: 'POST',
      format: 'json',
      headers: ['X-Team', 'X-Token'],
      batch_size: 100,
      batch_duration: 1,
      compression: 'none',
      persistent: true,
      description: 'ops receiver',
      status: 'active',
      last_sent: null,
      last_sent_uuid: null,
    });
    expect((await h.get(alice, '/ws/v1/monitors')).json().inventory_uri).toBe('/ws/v1/monitors/inventory');
    expect(created).not.toHaveProperty('auth_token');
    expect(created).not.toHaveProperty('secret');
    expect(JSON.stringify(created)).not.toContain('abc');
    const one = await h.get(alice, `/ws/v1/monitors/inventory/${created.id}`);
    expect(one.json()).toEqual(created);

    const second = await createMonitor(alice, { url: `${receiver.url}/2`, description: 'b' });
    const page1 = (await h.get(alice, '/ws/v1/monitors/inventory?size=1&orderby=id desc')).json();
    expect(page1.list.map((m: { id: number }) => m.id)).toEqual([second.id]);
    const page2 = (await h.get(alice, page1.next_uri)).json();
    expect(page2.list.map((m: { id: number }) => m.id)).toEqual([created.id]);
    expect(page2.cursor).toBeUndefined();

    const changed = await h.put(alice, `/ws/v1/monitors/inventory/${created.id}`, {
      batch_size: 5,
      status: 'inactive',
    });
    expect(changed.json()).toMatchObject({ batch_size: 5, status: 'inactive', description: 'ops receiver' });

    // Another account's monitor is not there.
    expectError(await h.get(mallory, `/ws/v1/monitors/inventory/${created.id}`), 404);
    expectError(await h.put(mallory, `/ws/v1/monitors/inventory/${created.id}`, { batch_size: 1 }), 404);
    expectError(await h.delete(mallory, `/ws/v1/monitors/inventory/${created.id}`), 404);
    expect((await h.get(mallory, '/ws/v1/monitors/inventory')).json().count).toBe(0);

    expect((await h.delete(alice, `/ws/v1/monitors/inventory/${created.id}`)).json()).toEqual({
      count: 1,
      list: [created.id],
    });
    expectError(await h.get(alice, `/ws/v1/monitors/inventory/${created.id}`), 404);
  });

  /** The ids of `caller`'s monitors a list shows for `query` (and more parameters), in order. */
  const listed = async (caller: Caller, query: string, more = '') => {
    const response = await h.get(
      caller,
      `/ws/v1/monitors/inventory?query=${encodeURIComponent(query)}${more}`,
    );
    expect(response.statusCode, response.body).toBe(200);
    return (response.json().list as { id: number }[]).map((monitor) => monitor.id);
  };

  /** Three monitors of alice (`plain`, `backup`, `hook`) and one of mallory that matches much the same. */
  const queriedMonitors = async () => {
    const plain = await createMonitor(alice, { description: 'ops receiver' });
    const backup = await createMonitor(alice, {
      url: `${receiver.url}/backup`,
      method: 'PUT',
      format: 'xml',
      compression: 'gzip',
      persistent: false,
      batch_size: 10,
      description: 'Backup',
    });
    const hook = await createMonitor(alice, { url: 'https://example.com/Hook', batch_size: 500 });
    await h.put(alice, `/ws/v1/monitors/inventory/${hook.id}`, { status: 'inactive' });
    const theirs = await createMonitor(mallory, {
      url: `${receiver.url}/backup`,
      method: 'PUT',
      persistent: false,
      description: 'ops receiver',
    });
    return { plain, backup, hook, theirs };
  };

  it("query=method = 'put', format, compression, persistent, status, numbers, texts: only the account's matching monitors", async () => {
    const { plain, backup, hook, theirs } = await queriedMonitors();
    expect(await listed(alice, "method = 'put'")).toEqual([backup.id]);
    expect(await listed(alice, "method = 'POST'")).toEqual([plain.id, hook.id]);
    expect(await listed(alice, "format = 'xml' and compression = 'gzip'")).toEqual([backup.id]);
    expect(await listed(alice, "persistent = 'false'")).toEqual([backup.id]);
    expect(await listed(alice, "persistent = 'true'")).toEqual([plain.id, hook.id]);
    expect(await listed(alice, "status = 'inactive'")).toEqual([hook.id]);
    expect(await listed(alice, "status <> 'inactive'")).toEqual([plain.id, backup.id]);
    expect(await listed(alice, "type = 'http'")).toEqual([plain.id, backup.id, hook.id]);
    expect(await listed(alice, 'batch_size >= 100 and batch_duration = 1')).toEqual([plain.id, hook.id]);
    expect(await listed(alice, `id = ${backup.id} or batch_size > 100`)).toEqual([backup.id, hook.id]);
    expect(await listed(alice, 'description = empty')).toEqual([hook.id]);
    expect(await listed(alice, "description contains 'OPS'")).toEqual([plain.id]);
    expect(await listed(alice, "url startsWith 'HTTPS://example.com/'")).toEqual([hook.id]);
    expect(await listed(alice, "url endsWith '/backup'")).toEqual([backup.id]);
    expect(await listed(alice, "not url contains '127.0.0.1'")).toEqual([hook.id]);
    // Mallory's monitor matches the same conditions, but only in her own list.
    expect(await listed(mallory, "method = 'put' and description contains 'ops'")).toEqual([theirs.id]);
    expect(await listed(mallory, "format = 'xml'")).toEqual([]);
  });

  it('query=last_sent > -1h and last_sent_uuid: the monitors that sent, or last_sent = empty those that did not', async () => {
    const { plain, backup, hook } = await queriedMonitors();
    const now = Date.now();
    const leased = await h.store.leaseMonitors('query-test', now, 1000);
    const plainLease = leased.find((monitor) => monitor.id === plain.id);
    expect(plainLease).toBeDefined();
    await h.store.saveDelivery(plain.id, 'query-test', {
      cursor_id: plainLease?.cursor_id ?? 0,
      attempts: 0,
      next_attempt_at: null,
      failing_since: null,
      last_sent: now - 60_000,
      last_sent_uuid: 'Sent-UUID-1',
      disable: false,
    });
    expect(await listed(alice, 'last_sent > -1h')).toEqual([plain.id]);
    expect(await listed(alice, 'last_sent < -2m')).toEqual([]);
    expect(await listed(alice, `last_sent >= '${new Date(now - 120_000).toISOString()}'`)).toEqual([
      plain.id,
    ]);
    expect(await listed(alice, 'last_sent = empty')).toEqual([backup.id, hook.id]);
    expect(await listed(alice, "last_sent_uuid = 'sent-uuid-1'")).toEqual([plain.id]);
    expect(await listed(alice, 'last_sent_uuid <> empty')).toEqual([plain.id]);
  });

  it("query=persistent = 'true' with size=1 and orderby=batch_size desc: every match once, page by page", async () => {
    const { plain, hook } = await queriedMonitors();
    await createMonitor(alice, { persistent: false, description: 'another non-persistent one' });
    const seen: number[] = [];
    let uri: string | undefined =
      `/ws/v1/monitors/inventory?query=${encodeURIComponent("persistent = 'true'")}&size=1&orderby=batch_size desc`;
    while (uri !== undefined) {
      const response = await h.get(alice, uri);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json() as { list: { id: number }[]; next_uri?: string };
      seen.push(...page.list.map((monitor) => monitor.id));
      uri = page.next_uri;
    }
    expect(seen).toEqual([hook.id, plain.id]);
  });

  it("query=colour = 'blue', a bad value or operator: 400 naming the position and what was expected", async () => {
    await queriedMonitors();
    const refused = async (query: string) =>
      expectError(await h.get(alice, `/ws/v1/monitors/inventory?query=${encodeURIComponent(query)}`), 400);
    expect(await refused("colour = 'blue'")).toMatch(
      /position 1: expected a field \(id, type, url, .*\) but found 'colour'/,
    );
    expect(await refused("status = 'active' and topics = 'jobs'")).toMatch(/position 23: .*found 'topics'/);
    expect(await refused("device.name = 'pump'")).toMatch(/position 1: expected a field/);
    expect(await refused("method = 'get'")).toMatch(/position 10: expected one of 'post', 'put'/);
    expect(await refused("persistent = 'yes'")).toMatch(/expected one of 'true', 'false'/);
    expect(await refused("batch_size = 'ten'")).toMatch(/position 14: expected a number/);
    expect(await refused("url > 'b' and")).toMatch(/position 14/);
  });

  it('refuses bad monitors with 400 saying what is wrong', async () => {
    const bad = async (body: Record<string, unknown>, pattern: RegExp) => {
      const response = await h.post(alice, '/ws/v1/monitors/inventory', {
        topics: ['jobs'],
        url: receiver.url,
        ...body,
      });
      expect(expectError(response, 400)).toMatch(pattern);
    };
    await bad({ url: 'ftp://example.com/' }, /url/);
    await bad({ url: 'not a url' }, /url/);
    await bad({ topics: ['alarms'] }, /topics/);
    await bad({ topics: [] }, /topics/);
    await bad({ batch_size: 0 }, /batch_size/);
    await bad({ batch_size: 1001 }, /batch_size/);
    await bad({ batch_duration: 3601 }, /batch_duration/);
    await bad({ headers: ['no colon'] }, /header/);
    await bad({ format: 'csv' }, /format/);
    await bad({ colour: 'blue' }, /colour|additional/);
    expectError(await h.put(alice, '/ws/v1/monitors/inventory/1', { status: 'disabled' }), 400);
  });

  it('delivers every change in order, none missing, each as the API shows the object after it', async () => {
    const monitor = await createMonitor(alice, { batch_size: 7 });
    const devices = await h.devices(alice, 3, (n) => ({ group: '/east', name: `pump ${n}` }));
    await h.put(alice, `/ws/v1/devices/inventory/${devices[0]?.id}`, { name: 'renamed' });
    const ids = devices.map((device) => device.id);
    const now = Date.now();
    for (const id of ids) await setConnection(h.store, id, 'connected', now);
    const job = await h.job(alice, { targets: { groups: ['/east'] } });
    await h.store.startNewJobs({ node: 'test', now, expires: now + 60_000 });
    await h.store.takeJobRequests(job.id, now, 10, '');
    // Progress is a change of the target, not of its status: no event.
    await h.store.applyStatuses(
      [{ device_id: ids[0] ?? '', job_id: job.id, report: { status: 'in_progress', progress: 50 } }],
      now,
    );
    await h.store.applyStatuses(
      ids.map((id, n) => ({
        device_id: id,
        job_id: job.id,
        report: { status: n === 2 ? 'failed' : 'successful' },
      })),
      now,
    );
    const other = await h.job(alice, { targets: { devices: [ids[0]] } });
    await h.put(alice, `/ws/v1/jobs/cancel/${other.id}`);
    await h.delete(alice, `/ws/v1/jobs/inventory/${other.id}`);
    await h.delete(alice, `/ws/v1/devices/inventory/${ids[2]}`);
    // Another account's changes never reach this monitor.
    await h.devices(mallory, 2, () => ({}), 9);

    await deliverAll();
    const messages = receiver.messages();
    expect(new Set(messages.map((m) => m.uuid)).size).toBe(messages.length);
    const byTopic = (topic: string) => messages.filter((m) => m.topic === topic);

    // Devices: created, changed, connected, deleted, as the API shows them.
    for (const id of ids) {
      const events = byTopic(`${alice.accountId}/devices/${id}`);
      expect(events[0]?.operation).toBe('INSERTION');
      expect(events[0]?.devices?.connection_status).toBe('disconnected');
      expect(events.at(-1)?.devices?.connection_status).toBe('connected');
      if (id !== ids[2]) {
        expect(events.at(-1)?.devices).toEqual((await h.get(alice, `/ws/v1/devices/inventory/${id}`)).json());
      }
    }
    expect(byTopic(`${alice.accountId}/devices/${ids[0]}`).map((m) => m.devices?.name)).toEqual([
      'pump 1',
      'renamed',
      'renamed',
    ]);
    const deleted = byTopic(`${alice.accountId}/devices/${ids[2]}`);
    expect(deleted.map((m) => m.operation)).toEqual(['INSERTION', 'UPDATE', 'DELETION']);

    // The job: new with every target pending, in progress, then its counts as targets ended.
    const jobEvents = byTopic(`${alice.accountId}/jobs/${job.id}`).map((m) => m.jobs);
    expect(jobEvents[0]).toMatchObject({ job_status: 'new', target_count: 3, progress_pending: 3 });
    expect(jobEvents.map((j) => j?.job_status)).toEqual(['new', 'in_progress', 'complete']);
    const listed = (
      await h.get(alice, `/ws/v1/jobs/inventory?query=${encodeURIComponent(`id = ${job.id}`)}`)
    ).json();
    expect(jobEvents.at(-1)).toEqual(listed.list[0]);

    // Each target: in progress, then its result, as the targets list shows it at the end.
    const targets = (await h.get(alice, `/ws/v1/jobs/${job.id}/targets`)).json().list as Record<
      string,
      unknown
    >[];
    for (const target of targets) {
      const events = byTopic(`${alice.accountId}/job_targets/${job.id}/${target.device_id}`);
      expect(events.map((m) => m.job_targets?.status)).toEqual(['in_progress', target.status]);
      expect(events.at(-1)?.job_targets).toEqual(target);
    }

    // The canceled and deleted job: created, canceled (target canceled), deleted.
    expect(
      byTopic(`${alice.accountId}/jobs/${other.id}`).map((m) => [m.operation, m.jobs?.job_status]),
    ).toEqual([
      ['INSERTION', 'new'],
      ['UPDATE', 'canceled'],
      ['DELETION', 'canceled'],
    ]);
    expect(
      byTopic(`${alice.accountId}/job_targets/${other.id}/${ids[0]}`).map((m) => m.job_targets?.status),
    ).toEqual(['canceled']);

    expect(messages.every((m) => m.topic.startsWith(`${alice.accountId}/`) && m.group === '*')).toBe(true);
    expect(receiver.requests.every((r) => JSON.parse(r.body.toString()).Document.Msg.length <= 7)).toBe(true);
    const shown = (await h.get(alice, `/ws/v1/monitors/inventory/${monitor.id}`)).json();
    expect(shown.last_sent_uuid).toBe(messages.at(-1)?.uuid);
    expect(shown.last_sent).toEqual(expect.any(String));
  });

  it('sends nothing that happened before the monitor was created, and only its topics', async () => {
    await h.devices(alice, 1, () => ({}), 1);
    await createMonitor(alice, { topics: ['jobs'] });
    await h.job(alice, { targets: { devices: [deviceId(1, 1)] } });
    await deliverAll();
    expect(receiver.messages().map((m) => m.operation)).toEqual(['INSERTION']);
    expect(receiver.messages()[0]?.jobs?.job_status).toBe('new');
  });

  it('keeps events while the receiver is down and sends them in order when it is back', async () => {
    const monitor = await createMonitor(alice, { batch_size: 2, topics: ['devices'] });
    receiver.down = true;
    await h.devices(alice, 3, () => ({}), 2);
    clock.advance(1000);
    await delivery.pass();
    // Backing off: nothing is tried before the next attempt is due.
    const tried = receiver.requests.length;
    await delivery.pass();
    expect(receiver.requests.length).toBe(tried);
    // Ten minutes down: tries at 1, 2, 4, 8 … seconds, more events in the meantime.
    for (let second = 0; second < 600; second += 30) {
      clock.advance(30_000);
      await delivery.pass();
    }
    await h.devices(alice, 2, () => ({}), 3);
    receiver.down = false;
    clock.advance(15 * 60_000);
    await deliverAll();
    const ids = receiver.messages().map((m) => m.devices?.id);
    expect(ids).toEqual([deviceId(1, 2), deviceId(2, 2), deviceId(3, 2), deviceId(1, 3), deviceId(2, 3)]);
    expect((await h.get(alice, `/ws/v1/monitors/inventory/${monitor.id}`)).json().status).toBe('active');
  });

  it('a non-persistent monitor drops a batch after 3 tries; 24 h without success disables; active resumes', async () => {
    const monitor = await createMonitor(alice, { persistent: false, topics: ['devices'] });
    receiver.status = 500;
    await h.devices(alice, 1, () => ({}), 4);
    for (let attempt = 0; attempt < 3; attempt++) {
      clock.advance(5000);
      await delivery.pass();
    }
    expect(receiver.requests.length).toBe(3);
    receiver.status = 200;
    await h.devices(alice, 1, () => ({}), 5);
    await deliverAll();
    // The dropped batch is gone; the next one arrives.
    expect(
      receiver
        .messages()
        .slice(3)
        .map((m) => m.devices?.id),
    ).toEqual([deviceId(1, 5)]);

    const persistent = await createMonitor(alice, { topics: ['devices'] });
    await h.delete(alice, `/ws/v1/monitors/inventory/${monitor.id}`);
    const logged: { object: Record<string, unknown>; message: string }[] = [];
    const metrics = new Metrics(() => h.store.totals());
    const watched = new MonitorDelivery({
      store: h.store,
      logger: {
        info: () => undefined,
        error: () => undefined,
        warn: (object: Record<string, unknown>, message: string) => logged.push({ object, message }),
      } as never,
      metrics,
      now: clock.now,
      nodeId: 'node-a',
    });
    receiver.status = 503;
    await h.devices(alice, 1, () => ({}), 6);
    for (let hour = 0; hour <= 25; hour++) {
      clock.advance(3_600_000);
      await watched.pass();
    }
    expect(logged).toEqual([
      {
        object: { monitor: persistent.id, account: alice.accountId, url: receiver.url },
        message: 'monitor disabled: no delivery succeeded for 24 hours',
      },
    ]);
    const exposition = await metrics.registry.metrics();
    expect(exposition).toMatch(/fleetjobs_monitor_deliveries_total\{result="failure"\} [1-9]\d*\n/);
    metrics.close();
    const url = `/ws/v1/monitors/inventory/${persistent.id}`;
    expect((await h.get(alice, url)).json().status).toBe('disabled');
    const tries = receiver.requests.length;
    clock.advance(3_600_000);
    await delivery.pass();
    expect(receiver.requests.length).toBe(tries);

    receiver.status = 200;
    expect((await h.put(alice, url, { status: 'active' })).json().status).toBe('active');
    await deliverAll();
    expect(receiver.messages().at(-1)?.devices?.id).toBe(deviceId(1, 6));
  });

  it('signs the body as sent, compresses it, writes XML, sends Basic auth and the extra headers', async () => {
    await createMonitor(alice, {
      topics: ['devices'],
      format: 'xml',
      compression: 'gzip',
      secret: 'shh',
      auth_token: 'hook:pa55',
      headers: ['X-Team: ops'],
      method: 'PUT',
    });
    await h.devices(alice, 1, () => ({ tags: ['a', 'b'], name: 'x<y' }), 7);
    await deliverAll();
    const [request] = receiver.requests;
    if (request === undefined) throw new Error('nothing received');
    expect(request.method).toBe('PUT');
    expect(request.headers['content-encoding']).toBe('gzip');
    expect(request.headers['content-type']).toMatch(/^application\/xml/);
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from('hook:pa55').toString('base64')}`);
    expect(request.headers['x-team']).toBe('ops');
    expect(request.headers['x-fleetjobs-signature']).toBe(
      `sha256=${createHmac('sha256', 'shh').update(request.body).digest('hex')}`,
    );
    const xml = gunzipSync(request.body).toString();
    const parsed = new XMLParser({ parseTagValue: false }).parse(xml);
    const msg = parsed.Document.Msg;
    expect(msg).toMatchObject({
      topic: `${alice.accountId}/devices/${deviceId(1, 7)}`,
      group: '*',
      operation: 'INSERTION',
      devices: { id: deviceId(1, 7), name: 'x<y', tags: '["a","b"]' },
    });
  });

  it('only the node holding the lease sends; another takes over when that node dies', async () => {
    await createMonitor(alice, { topics: ['devices'] });
    const nodeB = new MonitorDelivery({ store: h.store, logger: silent, now: clock.now, nodeId: 'node-b' });
    await h.devices(alice, 1, () => ({}), 8);
    clock.advance(1000);
    await delivery.pass();
    await nodeB.pass();
    expect(receiver.messages().length).toBe(1);
    // node-a dies (no more passes); its lease expires and node-b sends what came next.
    await h.devices(alice, 1, () => ({}), 10);
    clock.advance(1000);
    await nodeB.pass();
    expect(receiver.messages().length).toBe(1);
    clock.advance(31_000);
    await nodeB.pass();
    expect(receiver.messages().map((m) => m.devices?.id)).toEqual([deviceId(1, 8), deviceId(1, 10)]);
    await nodeB.stop();
  });

  it('history lists the stored events, sent or not, by time, in pages', async () => {
    const monitor = await createMonitor(alice, { topics: ['devices'] });
    receiver.down = true;
    const before = new Date(Date.now() - 1).toISOString();
    await h.devices(alice, 3, () => ({}), 11);
    const url = `/ws/v1/monitors/history/${monitor.id}`;
    const page1 = (await h.get(alice, `${url}?size=2&start_time=${before}`)).json();
    expect(page1.count).toBe(2);
    expect(page1.list.map((m: Msg) => m.devices?.id)).toEqual([deviceId(1, 11), deviceId(2, 11)]);
    const page2 = (await h.get(alice, page1.next_uri)).json();
    expect(page2.list.map((m: Msg) => m.devices?.id)).toEqual([deviceId(3, 11)]);
    expect(page2.cursor).toBeUndefined();
    const none = (await h.get(alice, `${url}?end_time=${before}`)).json();
    expect(none.count).toBe(0);
    expectError(await h.get(alice, `${url}?start_time=yesterday`), 400);
    expectError(await h.get(mallory, url), 404);
    expectError(
      await h.get(alice, `${url}?size=2&cursor=${page1.cursor}&start_time=2020-01-01T00:00:00Z`),
      400,
    );
  });

  it('keeps events an hour for the stream, seven days for an account with a persistent monitor', async () => {
    const monitor = await createMonitor(alice, { topics: ['devices'] });
    await h.devices(alice, 1, () => ({}), 12);
    await h.devices(mallory, 1, () => ({}), 13);
    const history = async () =>
      (await h.get(alice, `/ws/v1/monitors/history/${monitor.id}`))
        .json()
        .list.map((m: Msg) => m.devices?.id);
    const malloryEvents = () => h.store.listEvents({ accountId: mallory.accountId, afterId: 0, limit: 1000 });
    expect(await history()).toContain(deviceId(1, 12));
    await h.store.pruneEvents(Date.now() + 2 * 3_600_000);
    expect(await history()).toContain(deviceId(1, 12));
    expect(await malloryEvents()).toEqual([]);
    await h.store.pruneEvents(Date.now() + 8 * 86_400_000);
    expect(await history()).toEqual([]);
  });
});
