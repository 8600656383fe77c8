import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

/** Everything a client can see of the account: a bad request must change none of it. */
async function snapshot(h: Harness, caller: Caller): Promise<string> {
  const jobs = await h.get(caller, '/ws/v1/jobs/bulk?orderby=id%20asc');
  const devices = await h.get(caller, '/ws/v1/devices/bulk');
  const targets = await h.get(caller, '/ws/v1/jobs/inventory?size=1000');
  return [jobs.body, devices.body, targets.body].join('\n');
}

describe('bad input gets a clear 400 and changes nothing', () => {
  let h: Harness;
  let bob: Caller;
  let before: string;
  let jobId: number;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    await h.devices(bob, 3);
    jobId = (await h.job(bob, { targets: { all: true } })).id;
    await h.job(bob, { targets: { devices: [deviceId(1)] } });
    before = await snapshot(h, bob);
  });
  afterAll(async () => {
    expect(await snapshot(h, bob)).toBe(before);
    await h.close();
  });

  it('malformed JSON', async () => {
    for (const url of ['/ws/v1/jobs/inventory', '/ws/v1/devices/inventory']) {
      const response = await h.inject(bob, {
        method: 'POST',
        url,
        payload: '{"job_type": "reboot",',
        headers: { 'content-type': 'application/json' },
      });
      expect(expectError(response, 400)).toMatch(/^Request body is not valid JSON/);
    }
    const put = await h.inject(bob, {
      method: 'PUT',
      url: `/ws/v1/devices/inventory/${deviceId(1)}`,
      payload: 'name=x',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expectError(put, 400);
  });

  it('a JSON route reads JSON, +json, form-encoded and untyped bodies as JSON, and answers 415 to other types', async () => {
    const send = (contentType: string | undefined, payload = '{"name": 5}') =>
      h.inject(bob, {
        method: 'PUT',
        url: `/ws/v1/devices/inventory/${deviceId(1)}`,
        payload,
        headers: contentType === undefined ? {} : { 'content-type': contentType },
      });
    for (const type of [
      'application/json',
      'application/vnd.api+json; charset=utf-8',
      'application/x-www-form-urlencoded',
    ]) {
      expect(expectError(await send(type), 400)).toBe('body.name must be string or null');
    }
    const untyped = await h.app.inject({
      method: 'PUT',
      url: `/ws/v1/devices/inventory/${deviceId(1)}`,
      headers: bob.headers,
      payload: Buffer.from('{"name": 5}'),
    });
    expect(expectError(untyped, 400)).toBe('body.name must be string or null');
    for (const type of ['text/xml', 'application/xml', 'text/plain', 'multipart/form-data; boundary=x']) {
      expect(expectError(await send(type, '<device><name>x</name></device>'), 415)).toMatch(
        /^Unsupported Content-Type .*application\/json/,
      );
    }
    const created = await h.inject(bob, {
      method: 'POST',
      url: '/ws/v1/jobs/inventory',
      payload: '<sci_request/>',
      headers: { 'content-type': 'text/xml' },
    });
    expectError(created, 415);
  });

  it('a missing body where one is needed', async () => {
    expect(expectError(await h.post(bob, '/ws/v1/jobs/inventory'), 400)).toBe('body must be object');
    const message = 'body must be a device object or an array of them';
    expect(expectError(await h.post(bob, '/ws/v1/devices/inventory'), 400)).toBe(message);
    expect(expectError(await h.post(bob, '/ws/v1/devices/inventory', '"x"'), 400)).toBe(message);
    expectError(await h.post(bob, '/ws/v1/devices/inventory', []), 400);
    const tooMany = Array.from({ length: 10_001 }, (_, n) => ({ id: deviceId(n + 1000) }));
    expect(expectError(await h.post(bob, '/ws/v1/devices/inventory', tooMany), 400)).toContain('10000');
  });

  it('wrong types are not coerced and unknown keys are not dropped', async () => {
    expect(
      expectError(await h.post(bob, '/ws/v1/devices/inventory', { id: deviceId(50), vendor_id: '12' }), 400),
    ).toBe('body.vendor_id must be an integer or null');
    expect(
      expectError(await h.post(bob, '/ws/v1/devices/inventory', { id: deviceId(50), tags: 'a,b' }), 400),
    ).toBe('body.tags must be array');
    expect(expectError(await h.post(bob, '/ws/v1/devices/inventory', { id: 12 }), 400)).toBe(
      'body.id must be string',
    );
    expect(
      expectError(
        await h.post(bob, '/ws/v1/devices/inventory', { id: deviceId(50), connection_status: 'connected' }),
        400,
      ),
    ).toBe("body: 'connection_status' is set by the service and cannot be written");
    expect(
      expectError(
        await h.post(bob, '/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { all: 1 } }),
        400,
      ),
    ).toBe('body.targets.all must be boolean');
    expect(
      expectError(
        await h.post(bob, '/ws/v1/jobs/inventory', {
          job_type: 'reboot',
          targets: { all: true },
          __proto__x: 1,
        }),
        400,
      ),
    ).toContain('__proto__x');
  });

  it('bodies over 16 MiB are 413', async () => {
    const huge = JSON.stringify({
      job_type: 'reboot',
      targets: { all: true },
      description: 'x'.repeat(16 * 1024 * 1024),
    });
    const response = await h.inject(bob, {
      method: 'POST',
      url: '/ws/v1/jobs/inventory',
      payload: huge,
      headers: { 'content-type': 'application/json' },
    });
    expect(expectError(response, 413)).toContain('16 MiB');
  });

  it('payloads over 64 KiB', async () => {
    const response = await h.post(bob, '/ws/v1/jobs/inventory', {
      job_type: 'reboot',
      targets: { all: true },
      payload: { blob: 'x'.repeat(65 * 1024) },
    });
    expect(expectError(response, 400)).toContain('payload');
  });

  it('a payload nested too deeply to handle is a 400, not a 500', async () => {
    const depth = 20_000;
    const response = await h.inject(bob, {
      method: 'POST',
      url: '/ws/v1/jobs/inventory',
      payload: `{"job_type":"reboot","targets":{"all":true},"payload":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(expectError(response, 400)).toMatch(/payload.*nested/);
  });

  it('a body that is not UTF-8', async () => {
    const response = await h.inject(bob, {
      method: 'POST',
      url: '/ws/v1/devices/inventory',
      payload: Buffer.concat([
        Buffer.from(`{"id":"${deviceId(50)}","name":"`),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]),
      headers: { 'content-type': 'application/json' },
    });
    expect(expectError(response, 400)).toContain('UTF-8');
  });

  it('a string with a lone surrogate, which is no Unicode text', async () => {
    const response = await h.inject(bob, {
      method: 'POST',
      url: '/ws/v1/devices/inventory',
      payload: `{"id":"${deviceId(51)}","name":"a\\ud800b"}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(expectError(response, 400)).toContain('surrogate');
  });

  it('a job with an unknown device or no targets', async () => {
    expectError(
      await h.post(bob, '/ws/v1/jobs/inventory', {
        job_type: 'reboot',
        targets: { devices: [deviceId(1), deviceId(77)] },
      }),
      400,
    );
    expectError(
      await h.post(bob, '/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { groups: ['/nowhere'] } }),
      400,
    );
  });

  it.each(['0', '-1', 'abc', '1.5', '', '1e3'])('size=%s', async (size) => {
    expect(expectError(await h.get(bob, `/ws/v1/jobs/inventory?size=${size}`), 400)).toContain('size');
  });

  it('size above 1000 is clamped to 1000', async () => {
    const response = await h.get(bob, '/ws/v1/jobs/inventory?size=5000');
    expect(response.json().size).toBe(1000);
    expect((await h.get(bob, '/ws/v1/devices/inventory?size=2')).json().size).toBe(2);
  });

  it('a parameter given twice', async () => {
    expectError(await h.get(bob, '/ws/v1/jobs/inventory?size=1&size=2'), 400);
  });

  it.each(['colour', 'id sideways', 'id asc desc', 'payload', 'tags'])('orderby=%s', async (orderby) => {
    const url = orderby === 'tags' ? '/ws/v1/devices/inventory' : '/ws/v1/jobs/inventory';
    expect(expectError(await h.get(bob, `${url}?orderby=${encodeURIComponent(orderby)}`), 400)).toContain(
      'orderby',
    );
  });

  it('unknown fields in fields', async () => {
    expect(expectError(await h.get(bob, '/ws/v1/jobs/bulk?fields=id,colour'), 400)).toContain("'colour'");
    expectError(await h.get(bob, '/ws/v1/devices/bulk?fields=device_token'), 400);
    expectError(await h.get(bob, `/ws/v1/jobs/${jobId}/targets/bulk?fields=status,,id`), 400);
  });

  it('bad ids in a list', async () => {
    expect(expectError(await h.put(bob, `/ws/v1/jobs/cancel/${jobId},x`), 400)).toContain("'x'");
    expectError(await h.put(bob, `/ws/v1/jobs/cancel${jobId},-2`), 400);
    expectError(await h.delete(bob, `/ws/v1/jobs/inventory/${jobId},1.5`), 400);
  });

  it('a bad query', async () => {
    const message = expectError(
      await h.get(bob, `/ws/v1/jobs/inventory?query=${encodeURIComponent('id equals 5')}`),
      400,
    );
    expect(message).toMatch(/^Invalid query at position 4/);
    expectError(
      await h.put(bob, `/ws/v1/jobs/inventory/cancel?query=${encodeURIComponent("job_status = 'paused'")}`),
      400,
    );
    expectError(await h.delete(bob, `/ws/v1/jobs/inventory?query=${encodeURIComponent('(id > 0')}`), 400);
  });

  it('a query value holding NUL (U+0000), on every store', async () => {
    for (const url of ['/ws/v1/jobs/inventory', '/ws/v1/devices/inventory']) {
      const message = expectError(
        await h.get(bob, `${url}?query=${encodeURIComponent("description = 'a\u0000b'")}`),
        400,
      );
      expect(message).toMatch(/^Invalid query at position 17: expected text without NUL/);
    }
  });

  it('a malformed, forged or foreign cursor', async () => {
    const first = (await h.get(bob, '/ws/v1/jobs/inventory?size=1')).json();
    expect(first.cursor).toEqual(expect.any(String));
    expect(
      (await h.get(bob, `/ws/v1/jobs/inventory?size=1&cursor=${encodeURIComponent(first.cursor)}`))
        .statusCode,
    ).toBe(200);

    const [body, signature] = first.cursor.split('.');
    const forgedBody = Buffer.from(JSON.stringify([null, 1])).toString('base64url');
    for (const cursor of [
      'garbage',
      `${body}`,
      `${forgedBody}.${signature}`,
      `${body}.${signature}x`,
      `${body}.${signature}.x`,
    ]) {
      const message = expectError(
        await h.get(bob, `/ws/v1/jobs/inventory?size=1&cursor=${encodeURIComponent(cursor)}`),
        400,
      );
      expect(message).toMatch(/cursor/);
    }
    const cursor = encodeURIComponent(first.cursor);
    expectError(await h.get(bob, `/ws/v1/jobs/inventory?size=1&cursor=${cursor}&query=id%20%3E%200`), 400);
    expectError(await h.get(bob, `/ws/v1/jobs/inventory?size=1&cursor=${cursor}&orderby=id%20asc`), 400);
    expectError(await h.get(bob, `/ws/v1/devices/inventory?size=1&cursor=${cursor}`), 400);
    expectError(await h.get(bob, `/ws/v1/jobs/${jobId}/targets?size=1&cursor=${cursor}`), 400);
    // The same query written differently is the same query.
    const queried = (
      await h.get(bob, `/ws/v1/jobs/inventory?size=1&query=${encodeURIComponent('id > 0')}`)
    ).json();
    const respaced = encodeURIComponent('ID   >   0');
    expect(
      (
        await h.get(
          bob,
          `/ws/v1/jobs/inventory?size=1&query=${respaced}&cursor=${encodeURIComponent(queried.cursor)}`,
        )
      ).statusCode,
    ).toBe(200);

    const mallory = await h.user('globex', 'mallory');
    expectError(await h.get(mallory, `/ws/v1/jobs/inventory?size=1&cursor=${cursor}`), 400);
  });

  it('a body on a route that takes none', async () => {
    const cancel = await h.put(bob, `/ws/v1/jobs/cancel/${jobId}`, { force: true });
    expect(expectError(cancel, 400)).toMatch(/unknown field 'force'/);
    expectError(await h.put(bob, '/ws/v1/jobs/inventory/cancel?query=id%20%3E%200', [1]), 400);
    expectError(
      await h.inject(bob, {
        method: 'DELETE',
        url: `/ws/v1/devices/inventory/${deviceId(1)}`,
        payload: { x: 1 },
      }),
      400,
    );
  });

  it('a bad force value', async () => {
    expectError(await h.put(bob, `/ws/v1/jobs/cancel/${jobId}?force=yes`), 400);
  });
});
