import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobDetail } from '../../src/model/job.js';
import type { StatusReport } from '../../src/store/store.js';
import { setConnection } from '../setup/presence.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  isArray: (name) => name === 'device',
});

const ONLINE = [1, 2, 3];
const OFFLINE = 4;
const UNKNOWN = deviceId(0xabcd);

describe('SCI: POST /ws/sci and /ws/sci/{id}', () => {
  let h: Harness;
  let bob: Caller;
  let reader: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    reader = await h.user('acme', 'reader', 'read_only');
    await h.devices(bob, 4, (n) => ({
      group: n <= 2 ? '/NorthWest/Seattle' : '/South',
      tags: n === 3 ? ['sensor'] : [],
    }));
    for (const n of ONLINE) await setConnection(h.store, deviceId(n), 'connected', Date.now());
  });
  afterAll(() => h.close());

  const sci = (body: string, headers: Record<string, string> = {}) =>
    h.inject(bob, {
      method: 'POST',
      url: '/ws/sci',
      payload: body,
      headers: { 'content-type': 'text/xml', ...headers },
    });

  const request = (operation: string, targets: string, inner = '', attributes = '') =>
    `<sci_request version="1.0"><${operation}${attributes}><targets>${targets}</targets>${inner}</${operation}></sci_request>`;
  const device = (n: number | string) => `<device id="${typeof n === 'number' ? deviceId(n) : n}"/>`;

  /** What the dispatcher does with a device's status report: stores it, then tells the waiters. */
  const report = async (jobId: number, n: number, status: StatusReport) => {
    expect(
      await h.store.applyStatuses([{ job_id: jobId, device_id: deviceId(n), report: status }], Date.now()),
    ).toEqual([true]);
    h.jobs.targetsChanged([jobId]);
  };
  const nextJob = () => new Promise<JobDetail>((resolve) => h.jobs.once('job-created', resolve));
  const xml = (body: string) => parser.parse(body) as { sci_reply: Record<string, unknown> };
  const targetsOf = async (jobId: number) =>
    (await h.get(bob, `/ws/v1/jobs/${jobId}/targets`)).json().list as {
      device_id: string;
      status: string;
      message: string | null;
    }[];

  it.each([
    ['send_message', '<rci_request version="1.1"><query_state/></rci_request>', ''],
    ['reboot', '', ''],
    ['update_firmware', '<data>AAECAw==</data>', ' filename="firmware.bin"'],
    [
      'data_service',
      '<requests><device_request target_name="myTarget">hello</device_request></requests>',
      '',
    ],
    ['file_system', '<commands><ls path="/"/></commands>', ''],
    ['disconnect', '', ''],
  ])(
    'asynchronous %s: 202, Location and the job id; the job is a v1 job whose payload the device receives',
    async (operation, inner, extra) => {
      const response = await sci(request(operation, device(1), inner, ` synchronous="false"${extra}`));
      expect(response.statusCode, response.body).toBe(202);
      expect(response.headers['content-type']).toMatch(/^application\/xml/);
      const jobId = Number(/<jobId>(\d+)<\/jobId>/.exec(response.body)?.[1]);
      expect(response.body).toBe(
        `<sci_reply version="1.0"><${operation}><jobId>${jobId}</jobId></${operation}></sci_reply>`,
      );
      expect(response.headers.location).toBe(`/ws/sci/${jobId}`);
      const job = (await h.get(bob, `/ws/v1/jobs/${jobId}`)).json();
      expect(job).toMatchObject({
        job_type: operation,
        username: 'bob',
        target_count: 1,
        targets: { devices: [deviceId(1)] },
      });
      expect(job.payload).toEqual({
        sci: inner,
        attributes: { synchronous: 'false', ...(extra === '' ? {} : { filename: 'firmware.bin' }) },
      });
      const listed = (
        await h.get(bob, `/ws/v1/jobs/inventory?query=${encodeURIComponent(`id = ${jobId}`)}`)
      ).json();
      expect(listed.list).toHaveLength(1);
    },
  );

  it('unites the four target forms: device ids, id="all", tags and group paths', async () => {
    const targetIds = async (targets: string) => {
      const response = await sci(request('reboot', targets, '', ' synchronous="false" allowOffline="true"'));
      expect(response.statusCode, response.body).toBe(202);
      const jobId = Number(/<jobId>(\d+)/.exec(response.body)?.[1]);
      return (await targetsOf(jobId)).map((target) => target.device_id);
    };
    expect(await targetIds(device(2))).toEqual([deviceId(2)]);
    expect(await targetIds(device(deviceId(2).toLowerCase()))).toEqual([deviceId(2)]);
    expect(await targetIds(device('all'))).toEqual([1, 2, 3, 4].map((n) => deviceId(n)));
    expect(await targetIds('<device tag="sensor"/>')).toEqual([deviceId(3)]);
    expect(await targetIds('<group path="/NorthWest"/>')).toEqual([deviceId(1), deviceId(2)]);
    expect(
      await targetIds(`<group path="NorthWest/Seattle/"/><device tag="sensor"/>${device(4)}${device(1)}`),
    ).toEqual([1, 2, 3, 4].map((n) => deviceId(n)));
  });

  it('synchronous: waits for every device and answers their reply fragments, 2002 with a failure message, 303 for an unknown id', async () => {
    const created = nextJob();
    const pending = sci(
      request(
        'send_message',
        `${device(1)}${device(2)}${device(UNKNOWN)}`,
        '<rci_request version="1.1"><query_state/></rci_request>',
      ),
    );
    const job = await created;
    expect(job.target_count).toBe(2);
    await report(job.id, 1, {
      status: 'successful',
      response: {
        sci: '<rci_reply version="1.1"><query_state><uptime>42</uptime></query_state></rci_reply>',
      },
    });
    await report(job.id, 2, { status: 'failed', message: 'no such setting' });
    const response = await pending;
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toBe(
      '<sci_reply version="1.0"><send_message>' +
        `<device id="${deviceId(1)}"><rci_reply version="1.1"><query_state><uptime>42</uptime></query_state></rci_reply></device>` +
        `<device id="${deviceId(2)}"><error id="2002"><desc>no such setting</desc></error></device>` +
        `<device id="${UNKNOWN}"><error id="303"><desc>Invalid target. Device not found.</desc></error></device>` +
        '</send_message></sci_reply>',
    );
    // The job keeps every id the request named, so /ws/sci/{id} answers the same replies later.
    expect((await h.get(bob, `/ws/v1/jobs/${job.id}`)).json().targets).toEqual({
      devices: [deviceId(1), deviceId(2), UNKNOWN],
    });
    expect((await h.get(bob, `/ws/sci/${job.id}`)).body).toBe(
      response.body.replace(
        '<sci_reply version="1.0">',
        '<sci_reply version="1.0"><status>complete</status>',
      ),
    );
  });

  it('a report stored by another node (no local notice) still ends the wait, by the bounded poll', async () => {
    const created = nextJob();
    const pending = sci(request('reboot', device(3)));
    const job = await created;
    const stored = await h.store.applyStatuses(
      [{ job_id: job.id, device_id: deviceId(3), report: { status: 'successful' } }],
      Date.now(),
    );
    expect(stored).toEqual([true]);
    const response = await pending;
    expect(response.body).toBe(
      `<sci_reply version="1.0"><reboot><device id="${deviceId(3)}"/></reboot></sci_reply>`,
    );
  });

  it('a device offline when the request comes fails at once with 2001 Device Not Connected', async () => {
    const response = await sci(request('reboot', `${device(OFFLINE)}`));
    expect(response.statusCode, response.body).toBe(200);
    expect(response.body).toBe(
      `<sci_reply version="1.0"><reboot><device id="${deviceId(OFFLINE)}"><error id="2001"><desc>Device Not Connected</desc></error></device></reboot></sci_reply>`,
    );
    const [job] = (await h.get(bob, '/ws/v1/jobs/inventory?size=1')).json().list;
    expect(job).toMatchObject({ job_status: 'failed', progress_failures: 1, progress_pending: 0 });
    expect((await targetsOf(job.id))[0]).toMatchObject({ status: 'failed', message: 'Device Not Connected' });
  });

  it('syncTimeout: a device that does not answer in time is 2003 Timed out; the job goes on and /ws/sci/{id} shows it later', async () => {
    const created = nextJob();
    const pending = sci(
      request('reboot', `${device(1)}${device(OFFLINE)}`, '', ' syncTimeout="1" allowOffline="true"'),
    );
    const job = await created;
    const response = await pending;
    expect(response.statusCode).toBe(200);
    const devices = xml(response.body).sci_reply.reboot as { device: unknown[] };
    expect(devices.device).toEqual(
      [1, OFFLINE].map((n) => ({ '@id': deviceId(n), error: { '@id': '2003', desc: 'Timed out' } })),
    );
    expect((await targetsOf(job.id)).map((target) => target.status)).toEqual(['queued', 'queued']);

    const status = await h.get(bob, `/ws/sci/${job.id}`);
    expect(status.body).toBe('<sci_reply version="1.0"><status>in_progress</status></sci_reply>');
    expect((await h.inject(bob, { method: 'HEAD', url: `/ws/sci/${job.id}` })).statusCode).toBe(202);
    expect(xml((await h.delete(bob, `/ws/sci/${job.id}`)).body).sci_reply.error).toMatchObject({
      desc: expect.stringMatching(/cancel it first/),
    });
    expect((await h.delete(bob, `/ws/sci/${job.id}`)).statusCode).toBe(409);

    await report(job.id, 1, { status: 'successful', response: { sci: '<rebooted/>' } });
    await h.store.expireTargets(Date.now() + 2 * 86_400_000, 100);
    const done = await h.get(bob, `/ws/sci/${job.id}`);
    expect(done.body).toBe(
      '<sci_reply version="1.0"><status>complete</status><reboot>' +
        `<device id="${deviceId(1)}"><rebooted/></device>` +
        `<device id="${deviceId(OFFLINE)}"><error id="2003"><desc>Timed out</desc></error></device>` +
        '</reboot></sci_reply>',
    );
    expect((await h.inject(bob, { method: 'HEAD', url: `/ws/sci/${job.id}` })).statusCode).toBe(200);
    const deleted = await h.delete(bob, `/ws/sci/${job.id}`);
    expect(deleted.statusCode).toBe(200);
    expectError(await h.get(bob, `/ws/v1/jobs/${job.id}`), 404);
    expect((await h.get(bob, `/ws/sci/${job.id}`)).statusCode).toBe(404);
  });

  it('reply="errors" shows only the devices that failed, reply="none" none', async () => {
    const created = nextJob();
    const pending = sci(request('reboot', `${device(1)}${device(OFFLINE)}`, '', ' reply="errors"'));
    await report((await created).id, 1, { status: 'successful' });
    const errors = await pending;
    expect(xml(errors.body).sci_reply.reboot).toEqual({
      device: [{ '@id': deviceId(OFFLINE), error: { '@id': '2001', desc: 'Device Not Connected' } }],
    });
    const none = await sci(request('reboot', device(OFFLINE), '', ' reply="none"'));
    expect(none.body).toBe('<sci_reply version="1.0"><reboot/></sci_reply>');
  });

  it('Accept: application/json gives the same reply as JSON', async () => {
    const response = await sci(request('reboot', `${device(OFFLINE)}${device(UNKNOWN)}`), {
      accept: 'application/json',
    });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^application\/json/);
    expect(response.json()).toEqual({
      sci_reply: {
        '@version': '1.0',
        reboot: {
          device: [
            { '@id': deviceId(OFFLINE), error: { '@id': '2001', desc: 'Device Not Connected' } },
            { '@id': UNKNOWN, error: { '@id': '303', desc: 'Invalid target. Device not found.' } },
          ],
        },
      },
    });
    const refused = await sci('<nope/>', { accept: 'application/json' });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({
      sci_reply: { '@version': '1.0', error: { desc: expect.stringMatching(/sci_request/) } },
    });
  });

  const XXE =
    '<?xml version="1.0"?><!DOCTYPE sci_request [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' +
    '<sci_request version="1.0"><send_message><targets><device id="all"/></targets><x>&xxe;</x></send_message></sci_request>';
  const LAUGHS =
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>' +
    '<sci_request version="1.0"><send_message><targets><device id="all"/></targets><x>&lol3;</x></send_message></sci_request>';

  it.each([
    [
      'not well-formed XML',
      '<sci_request version="1.0"><reboot><targets></reboot></sci_request>',
      /well-formed/,
    ],
    ['an external entity (XXE)', XXE, /DTD/],
    ['entity expansion (billion laughs)', LAUGHS, /DTD/],
    ['no sci_request', '<rci_request><query_state/></rci_request>', /No sci_request/],
    ['an empty body', ' ', /No sci_request/],
    ['an unknown operation', request('format_disk', device(1)), /Unknown operation <format_disk>/],
    ['no targets', '<sci_request version="1.0"><reboot/></sci_request>', /No valid target/],
    ['empty targets', request('reboot', ''), /No valid target/],
    [
      'only unknown devices',
      request('reboot', `${device(UNKNOWN)}${device('not-a-device')}`),
      /No valid target/,
    ],
    ['a bad syncTimeout', request('reboot', device(1), '', ' syncTimeout="soon"'), /syncTimeout/],
    ['a bad synchronous', request('reboot', device(1), '', ' synchronous="maybe"'), /synchronous/],
  ])('400 with the SCI error reply for %s, and no job', async (_what, body, message) => {
    const before = (await h.get(bob, '/ws/v1/jobs/inventory?size=1')).json().list[0]?.id;
    const response = await sci(body);
    expect(response.statusCode).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/xml/);
    expect(response.body).toMatch(
      /^<sci_reply version="1.0"><error><desc>[^<]*<\/desc><\/error><\/sci_reply>$/,
    );
    expect(xml(response.body).sci_reply.error).toEqual({ desc: expect.stringMatching(message) });
    expect((await h.get(bob, '/ws/v1/jobs/inventory?size=1')).json().list[0]?.id).toBe(before);
    expect(response.body).not.toContain('root:');
  });

  it('takes text/xml, application/xml and an XML body sent by curl -d; answers 415 to JSON and other types', async () => {
    const body = request('reboot', device(OFFLINE));
    for (const type of ['text/xml', 'application/xml; charset=utf-8', 'application/x-www-form-urlencoded']) {
      expect((await sci(body, { 'content-type': type })).statusCode).toBe(200);
    }
    expect(
      (
        await h.app.inject({
          method: 'POST',
          url: '/ws/sci',
          headers: bob.headers,
          payload: Buffer.from(body),
        })
      ).statusCode,
    ).toBe(200);
    expect(expectError(await sci('{"reboot": true}', { 'content-type': 'application/json' }), 415)).toMatch(
      /text\/xml/,
    );
    expectError(await sci(body, { 'content-type': 'text/plain' }), 415);
  });

  it('needs credentials and a role that may write; another account sees no job', async () => {
    expectError(
      await h.inject(null, {
        method: 'POST',
        url: '/ws/sci',
        payload: request('reboot', device(1)),
        headers: { 'content-type': 'text/xml' },
      }),
      401,
    );
    expectError(
      await h.inject(reader, {
        method: 'POST',
        url: '/ws/sci',
        payload: request('reboot', device(1)),
        headers: { 'content-type': 'text/xml' },
      }),
      403,
    );
    const response = await sci(request('reboot', device(1), '', ' synchronous="false"'));
    const jobId = Number(/<jobId>(\d+)/.exec(response.body)?.[1]);
    const mallory = await h.user('globex', 'mallory');
    expect((await h.get(mallory, `/ws/sci/${jobId}`)).statusCode).toBe(404);
    expect((await h.get(reader, `/ws/sci/${jobId}`)).statusCode).toBe(200);
    expect(xml((await h.get(bob, '/ws/sci/nope')).body).sci_reply.error).toEqual({
      desc: expect.stringMatching(/Invalid job id/),
    });
  });
});
