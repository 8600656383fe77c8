import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_FIELDS, JOB_LIST_FIELDS, TARGET_FIELDS } from '../../src/model/job.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const q = (text: string) => encodeURIComponent(text);

describe('jobs', () => {
  let h: Harness;
  let bob: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    await h.devices(bob, 5, (n) => ({
      group: n <= 2 ? '/NorthWest/Seattle' : '/South',
      tags: n % 2 === 0 ? ['even'] : [],
    }));
  });
  afterAll(() => h.close());

  it('GET /ws/v1/jobs is the summary', async () => {
    const response = await h.get(bob, '/ws/v1/jobs');
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({
      inventory_uri: '/ws/v1/jobs/inventory',
      inventory_xml_uri: '/ws/v1/jobs/inventory.xml',
      bulk_uri: '/ws/v1/jobs/bulk',
      cancel_uri: '/ws/v1/jobs/inventory/cancel',
    });
  });

  it('creates a job: 201, Location, the detail with what it was created with', async () => {
    const payload = { message: 'hello', nested: [1, { a: null }] };
    const response = await h.post(bob, '/ws/v1/jobs/inventory', {
      job_type: 'send_message',
      description: 'greet the north-west',
      targets: { groups: ['/NorthWest'], devices: [deviceId(5).toLowerCase()] },
      payload,
      timeout: 30,
    });
    expect(response.statusCode, response.body).toBe(201);
    const job = response.json();
    expect(response.headers.location).toBe(`/ws/v1/jobs/${job.id}`);
    expect(Object.keys(job)).toEqual([
      ...JOB_LIST_FIELDS,
      'payload',
      'timeout',
      'offline_timeout',
      'targets',
      'rollout',
      'abort',
      'retry',
      'schedule',
    ]);
    expect(job).toMatchObject({
      customer_id: bob.accountId,
      username: 'bob',
      job_type: 'send_message',
      job_status: 'new',
      description: 'greet the north-west',
      job_completion_time: null,
      target_count: 3,
      progress_success: 0,
      progress_failures: 0,
      progress_canceled: 0,
      progress_pending: 3,
      rollout_state: 'running',
      abort_reason: null,
      payload,
      timeout: 30,
      offline_timeout: 86400,
      rollout: null,
      abort: null,
      retry: null,
      schedule: null,
    });
    expect(job.job_submit_time).toMatch(ISO);
    expect(job.targets.groups).toEqual(['/NorthWest']);

    for (const url of [`/ws/v1/jobs/${job.id}`, `/ws/v1/jobs/inventory/${job.id}`]) {
      const read = await h.get(bob, url);
      expect(read.statusCode).toBe(200);
      expect(read.json()).toEqual(job);
    }
    const targets = (await h.get(bob, `/ws/v1/jobs/${job.id}/targets`)).json();
    expect(targets.list.map((target: { device_id: string }) => target.device_id)).toEqual([
      deviceId(1),
      deviceId(2),
      deviceId(5),
    ]);
    expect(targets.list[0]).toMatchObject({
      job_id: job.id,
      status: 'queued',
      progress: 0,
      message: null,
      response: null,
      start_time: null,
    });
    expect(targets.list[0].queued_time).toMatch(ISO);
  });

  it('refuses a bad job with a 400 that says what, and creates nothing', async () => {
    const before = (await h.get(bob, '/ws/v1/jobs/inventory')).json().count;
    const cases: [unknown, string | RegExp][] = [
      [{ targets: { all: true } }, "body: missing required field 'job_type'"],
      [{ job_type: 'dance', targets: { all: true } }, /body\.job_type must be one of send_message/],
      [{ job_type: 'reboot' }, "body: missing required field 'targets'"],
      [{ job_type: 'reboot', targets: { all: 'yes' } }, 'body.targets.all must be boolean'],
      [{ job_type: 'reboot', targets: { every: true } }, "body.targets: unknown field 'every'"],
      [{ job_type: 'reboot', targets: { all: true }, colour: 1 }, "body: unknown field 'colour'"],
      [{ job_type: 'reboot', targets: { all: true }, timeout: '30' }, 'body.timeout must be an integer'],
      [{ job_type: 'reboot', targets: { all: true }, timeout: 0 }, /timeout/],
      [{ job_type: 'reboot', targets: {} }, /targets/],
      [{ job_type: 'reboot', targets: { devices: [] } }, /target/],
      [{ job_type: 'reboot', targets: { devices: [deviceId(999)] } }, /00000000-00000000-00000000-000003E7/],
      [{ job_type: 'reboot', targets: { devices: ['nope'] } }, /nope/],
      [{ job_type: 'reboot', targets: { query: 'colour = 1' } }, /Invalid query/],
      [{ job_type: 'reboot', targets: { tags: ['no-such-tag'] } }, /target/],
      [{ job_type: 'reboot', targets: { all: true }, payload: 'x'.repeat(64 * 1024) }, /payload/],
      [[{ job_type: 'reboot', targets: { all: true } }], 'body must be object'],
    ];
    for (const [body, message] of cases) {
      const text = expectError(await h.post(bob, '/ws/v1/jobs/inventory', body), 400);
      if (typeof message === 'string') expect(text).toBe(message);
      else expect(text).toMatch(message);
    }
    expect((await h.get(bob, '/ws/v1/jobs/inventory')).json().count).toBe(before);
  });

  it('takes targets by tags, device query and all', async () => {
    expect((await h.job(bob, { targets: { tags: ['EVEN'] } })).target_count).toBe(2);
    expect((await h.job(bob, { targets: { query: "group startsWith '/South/'" } })).target_count).toBe(3);
    expect((await h.job(bob, { targets: { all: true } })).target_count).toBe(5);
  });

  it('lists jobs newest first, filters by query, orders by any job field', async () => {
    const all = (await h.get(bob, '/ws/v1/jobs/inventory')).json();
    expect(Object.keys(all)).toEqual(['count', 'size', 'list']);
    expect(all.count).toBe(all.list.length);
    const ids = all.list.map((job: { id: number }) => job.id);
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(Object.keys(all.list[0])).toEqual([...JOB_LIST_FIELDS]);

    const rebootIds = (
      await h.get(bob, `/ws/v1/jobs/inventory?query=${q("job_type = 'reboot'")}&orderby=target_count%20asc`)
    )
      .json()
      .list.map((job: { target_count: number }) => job.target_count);
    expect(rebootIds).toEqual([2, 3, 5]);
    const byDevice = (
      await h.get(bob, `/ws/v1/jobs/inventory?query=${q(`device.id = '${deviceId(5)}'`)}`)
    ).json();
    expect(byDevice.count).toBe(3);
    // The direction defaults to desc.
    expect((await h.get(bob, '/ws/v1/jobs/inventory?orderby=id')).json().list[0].id).toBe(Math.max(...ids));
    expect((await h.get(bob, '/ws/v1/jobs/inventory?orderby=ID%20ASC')).json().list[0].id).toBe(
      Math.min(...ids),
    );
  });

  it('answers XML for inventory.xml and for Accept: application/xml', async () => {
    await h.job(bob, {
      description: "quotes \" & <angles> 'apostrophes'",
      targets: { devices: [deviceId(1)] },
    });
    const parser = new XMLParser({ parseTagValue: false });
    for (const [url, headers] of [
      ['/ws/v1/jobs/inventory.xml?size=2', {}],
      ['/ws/v1/jobs/inventory?size=2', { accept: 'application/xml' }],
    ] as const) {
      const response = await h.get(bob, url, headers);
      expect(response.statusCode).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/xml/);
      expect(
        response.body.startsWith(
          '<?xml version="1.0" encoding="UTF-8"?><result><count>2</count><size>2</size><cursor>',
        ),
      ).toBe(true);
      const { result } = parser.parse(response.body);
      expect(Object.keys(result)).toEqual(['count', 'size', 'cursor', 'next_uri', 'list']);
      expect(result.list.job).toHaveLength(2);
      const newest = result.list.job[0];
      expect(Object.keys(newest)).toEqual([...JOB_LIST_FIELDS]);
      expect(newest.description).toBe("quotes \" & <angles> 'apostrophes'");
      expect(newest.job_completion_time).toBe('');
      expect(newest.job_submit_time).toMatch(ISO);
      const next = await h.get(bob, result.next_uri, headers);
      expect(next.statusCode).toBe(200);
    }
    expect(
      (
        await h.get(bob, '/ws/v1/jobs/inventory', { accept: 'application/json, application/xml;q=0.5' })
      ).json(),
    ).toHaveProperty('list');
    const empty = await h.get(bob, `/ws/v1/jobs/inventory.xml?query=${q('id < 0')}`);
    expect(empty.body).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><result><count>0</count><size>1000</size><list></list></result>',
    );
  });

  it('exports CSV that round-trips quotes, commas and newlines, with fields and a header always', async () => {
    const description = 'line one, "quoted"\r\nline two\nline three';
    const job = await h.job(bob, { description, targets: { devices: [deviceId(2)] } });
    const response = await h.get(bob, '/ws/v1/jobs/bulk');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parseCsv(response.body) as string[][];
    expect(rows[0]).toEqual([...JOB_FIELDS]);
    const listed = (await h.get(bob, '/ws/v1/jobs/inventory')).json().list;
    expect(rows.length - 1).toBe(listed.length);
    expect(rows[1]?.[0]).toBe(String(job.id));
    expect(rows[1]?.[5]).toBe(description);
    expect(rows[1]?.[7]).toBe('');
    expect(rows[1]?.[6]).toMatch(ISO);

    const some = parseCsv(
      (await h.get(bob, `/ws/v1/jobs/bulk?fields=${q('description, id')}&orderby=id%20asc`)).body,
    ) as string[][];
    expect(some[0]).toEqual(['description', 'id']);
    expect(some.at(-1)).toEqual([description, String(job.id)]);

    const none = await h.get(bob, `/ws/v1/jobs/bulk?query=${q('id < 0')}&fields=id,job_status`);
    expect(none.body).toBe('id,job_status\r\n');
    expect(expectError(await h.get(bob, '/ws/v1/jobs/bulk?fields=id,payload'), 400)).toContain("'payload'");
    expectError(await h.get(bob, `/ws/v1/jobs/bulk?query=${q('colour = 1')}`), 400);
  });

  it("lists and exports a job's targets with query and orderby", async () => {
    const job = await h.job(bob, { targets: { all: true } });
    const desc = (await h.get(bob, `/ws/v1/jobs/${job.id}/targets?orderby=device_id%20desc&size=2`)).json();
    expect(desc.list.map((target: { device_id: string }) => target.device_id)).toEqual([
      deviceId(5),
      deviceId(4),
    ]);
    expect(desc.next_uri).toBe(
      `/ws/v1/jobs/${job.id}/targets?orderby=device_id%20desc&size=2&cursor=${encodeURIComponent(desc.cursor)}`,
    );
    const rest = (await h.get(bob, desc.next_uri)).json();
    expect(rest.list.map((target: { device_id: string }) => target.device_id)).toEqual([
      deviceId(3),
      deviceId(2),
    ]);
    const queried = (
      await h.get(bob, `/ws/v1/jobs/${job.id}/targets?query=${q("status = 'queued' and tags = 'even'")}`)
    ).json();
    expect(queried.count).toBe(2);
    expectError(await h.get(bob, `/ws/v1/jobs/${job.id}/targets?query=${q("status = 'lost'")}`), 400);
    const csv = parseCsv((await h.get(bob, `/ws/v1/jobs/${job.id}/targets/bulk`)).body) as string[][];
    expect(csv[0]).toEqual([...TARGET_FIELDS]);
    expect(csv).toHaveLength(6);
    expectError(await h.get(bob, '/ws/v1/jobs/999999/targets'), 404);
    expectError(await h.get(bob, '/ws/v1/jobs/999999/targets/bulk'), 404);
  });

  it('cancels by id, several ids, the no-slash form, and answers errors per id', async () => {
    const a = await h.job(bob, { targets: { devices: [deviceId(1)] } });
    const b = await h.job(bob, { targets: { devices: [deviceId(2)] } });
    const c = await h.job(bob, { targets: { devices: [deviceId(3)] } });

    const one = await h.put(bob, `/ws/v1/jobs/cancel/${a.id}`);
    expect(one.statusCode, one.body).toBe(200);
    expect(one.json()).toEqual({
      count: 1,
      list: [
        expect.objectContaining({
          id: a.id,
          job_status: 'canceled',
          progress_canceled: 1,
          progress_pending: 0,
        }),
      ],
    });
    expect(one.json().list[0].job_completion_time).toMatch(ISO);

    const again = await h.put(bob, `/ws/v1/jobs/cancel/${a.id}`);
    expect(expectError(again, 409)).toContain(String(a.id));

    const mixed = await h.put(bob, `/ws/v1/jobs/cancel${b.id},${a.id},999999`);
    expect(mixed.statusCode).toBe(200);
    const body = mixed.json();
    expect(body.count).toBe(1);
    expect(body.list.map((job: { id: number }) => job.id)).toEqual([b.id]);
    expect(body.errors).toEqual([
      { id: a.id, error_status: 409, error_message: expect.any(String) },
      { id: 999999, error_status: 404, error_message: expect.any(String) },
    ]);

    const missing = await h.put(bob, '/ws/v1/jobs/cancel/999998,999999');
    const message = expectError(missing, 404);
    expect(message).toContain('999998');
    expect(message).toContain('999999');

    expect(expectError(await h.put(bob, `/ws/v1/jobs/cancel/${c.id},x`), 400)).toContain("'x'");
    expectError(await h.put(bob, '/ws/v1/jobs/cancel'), 400);
    expectError(await h.put(bob, `/ws/v1/jobs/cancel/${c.id}?force=maybe`), 400);
    expect((await h.get(bob, `/ws/v1/jobs/${c.id}`)).json().job_status).toBe('new');
    const forced = await h.put(bob, `/ws/v1/jobs/cancel/${c.id}?force=true`);
    expect(forced.json().list[0].job_status).toBe('canceled');
  });

  it('cancels and deletes by query, which must not be empty', async () => {
    const marker = `batch-${Date.now()}`;
    for (let i = 0; i < 3; i++)
      await h.job(bob, { description: marker, targets: { devices: [deviceId(4)] } });
    const query = q(`description = '${marker}'`);
    expectError(await h.put(bob, '/ws/v1/jobs/inventory/cancel'), 400);
    expectError(await h.put(bob, '/ws/v1/jobs/inventory/cancel?query='), 400);
    expectError(await h.delete(bob, '/ws/v1/jobs/cancel?query=%20'), 400);
    expectError(await h.delete(bob, '/ws/v1/jobs/inventory'), 400);

    const unfinished = await h.delete(bob, `/ws/v1/jobs/cancel?query=${query}`);
    expect(unfinished.json()).toEqual({ count: 0, skipped: 3 });

    const canceled = await h.put(bob, `/ws/v1/jobs/inventory/cancel?query=${query}`);
    expect(canceled.statusCode).toBe(200);
    expect(canceled.json()).toEqual({ count: 3, skipped: 0 });
    expect((await h.put(bob, `/ws/v1/jobs/inventory/cancel?query=${query}`)).json()).toEqual({
      count: 0,
      skipped: 3,
    });

    const first = (await h.get(bob, `/ws/v1/jobs/inventory?query=${query}&orderby=id%20asc`)).json().list[0]
      .id;
    expect((await h.delete(bob, `/ws/v1/jobs/cancel?query=${q(`id = ${first}`)}`)).json()).toEqual({
      count: 1,
      skipped: 0,
    });
    expect((await h.delete(bob, `/ws/v1/jobs/inventory?query=${query}`)).json()).toEqual({
      count: 2,
      skipped: 0,
    });
    expect((await h.get(bob, `/ws/v1/jobs/inventory?query=${query}`)).json().count).toBe(0);
  });

  it('deletes by id: finished jobs only, several ids with errors per id', async () => {
    const done = await h.job(bob, { targets: { devices: [deviceId(1)] } });
    const running = await h.job(bob, { targets: { devices: [deviceId(1)] } });
    await h.put(bob, `/ws/v1/jobs/cancel/${done.id}`);

    expect(expectError(await h.delete(bob, `/ws/v1/jobs/inventory/${running.id}`), 409)).toMatch(
      /cancel it first/,
    );
    const mixed = await h.delete(bob, `/ws/v1/jobs/inventory/${done.id},${running.id}`);
    expect(mixed.statusCode).toBe(200);
    expect(mixed.json()).toEqual({
      count: 1,
      list: [done.id],
      errors: [
        { id: running.id, error_status: 409, error_message: expect.stringMatching(/cancel it first/) },
      ],
    });
    expectError(await h.get(bob, `/ws/v1/jobs/${done.id}`), 404);
    expectError(await h.get(bob, `/ws/v1/jobs/${done.id}/targets`), 404);
    expectError(await h.delete(bob, `/ws/v1/jobs/inventory/${done.id}`), 404);
    expectError(await h.delete(bob, '/ws/v1/jobs/inventory/1,,2'), 400);
    expect((await h.get(bob, `/ws/v1/jobs/${running.id}`)).json().job_status).toBe('new');
  });

  it('answers a malformed job id with 400 and an unknown one with 404', async () => {
    expect(expectError(await h.get(bob, '/ws/v1/jobs/abc'), 400)).toContain("'abc'");
    expectError(await h.get(bob, '/ws/v1/jobs/-1'), 400);
    expectError(await h.get(bob, '/ws/v1/jobs/99999999999999999999'), 400);
    expectError(await h.get(bob, '/ws/v1/jobs/0'), 404);
  });
});
