import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/app.js';
import { Simulator } from '../../src/dispatch/simulator.js';
import { hashPassword } from '../../src/security/hashing.js';
import { eventually, type Service, startService, TestDevice } from './harness.js';

const AUTH = { authorization: `Basic ${Buffer.from('alice:s3cret password').toString('base64')}` };

let service: Service;
let app: FastifyInstance;
let simulator: Simulator | null = null;
let logLines: Record<string, unknown>[] = [];

beforeEach(async () => {
  service = await startService();
  await service.store.createUser({
    accountId: service.accountId,
    username: 'alice',
    passwordHash: await hashPassword('s3cret password'),
    role: 'user',
    now: Date.now(),
  });
  logLines = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) logLines.push(JSON.parse(line));
      done();
    },
  });
  app = await buildApp({ store: service.store, jobs: service.jobs, logger: pino({ level: 'info' }, sink) });
});

afterEach(async () => {
  await simulator?.stop();
  simulator = null;
  await app.close();
  await service.stop();
});

const sciRequest = (targets: string, inner: string, attributes = '') =>
  `<sci_request version="1.0"><send_message${attributes}><targets>${targets}</targets>${inner}</send_message></sci_request>`;

describe('SCI with the real dispatcher', () => {
  it('a synchronous send_message reaches simulated devices over MQTT and answers their rci_reply', async () => {
    const devices = await service.addDevices(2);
    simulator = new Simulator({ mqttUrl: service.mqttUrl, devices, failRate: 0, latency: 50 });
    await simulator.start();
    await eventually(async () => {
      const states = await Promise.all(devices.map((d) => service.store.getDevice(service.accountId, d.id)));
      return states.every((device) => device?.connection_status === 'connected');
    }, 'devices online');

    const response = await app.inject({
      method: 'POST',
      url: '/ws/sci',
      headers: { ...AUTH, 'content-type': 'text/xml' },
      payload: sciRequest(
        devices.map((device) => `<device id="${device.id}"/>`).join(''),
        '<rci_request version="1.1"><query_state/></rci_request>',
      ),
    });
    expect(response.statusCode, response.body).toBe(200);
    for (const device of devices) {
      expect(response.body).toMatch(
        new RegExp(
          `<device id="${device.id}"><rci_reply version="1.1"><query_state><device_stats><uptime>\\d+</uptime>.*?<device_id>${device.id}</device_id></device_info></query_state></rci_reply></device>`,
        ),
      );
    }
    const [job] = (await app.inject({ method: 'GET', url: '/ws/v1/jobs/inventory', headers: AUTH })).json()
      .list;
    expect(job).toMatchObject({ job_type: 'send_message', job_status: 'complete', progress_success: 2 });
  });

  it('the device receives the SCI payload; a client that leaves ends the wait while the job goes on', async () => {
    const [identity] = await service.addDevices(1);
    if (identity === undefined) throw new Error('no device');
    const device = await TestDevice.connect(service.mqttUrl, identity.id, identity.token);
    await eventually(
      async () =>
        (await service.store.getDevice(service.accountId, identity.id))?.connection_status === 'connected',
      'device online',
    );
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const body = sciRequest(
      `<device id="${identity.id}"/>`,
      '<rci_request version="1.1"><query_setting><system/></query_setting></rci_request>',
      ' syncTimeout="300" reply="all"',
    );
    const client = httpRequest({
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: '/ws/sci',
      headers: { ...AUTH, 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) },
    });
    client.on('error', () => undefined);
    client.end(body);

    const received = await eventually(
      () => device.received.find((message) => message.kind === 'request'),
      'request',
    );
    expect(received.body).toMatchObject({
      job_type: 'send_message',
      payload: {
        sci: '<rci_request version="1.1"><query_setting><system/></query_setting></rci_request>',
        attributes: { syncTimeout: '300', reply: 'all' },
      },
    });
    client.destroy();
    const ended = await eventually(
      () => logLines.find((line) => line.msg === 'SCI client left before the reply'),
      'the wait to end',
    );
    expect(ended.job).toBe(received.jobId);

    await device.status(received.jobId, { status: 'successful', response: { sci: '<query_setting/>' } });
    const status = await eventually(async () => {
      const reply = await app.inject({ method: 'GET', url: `/ws/sci/${received.jobId}`, headers: AUTH });
      return reply.body.includes('complete') && reply.body;
    }, 'job complete');
    expect(status).toBe(
      `<sci_reply version="1.0"><status>complete</status><send_message><device id="${identity.id}"><query_setting/></device></send_message></sci_reply>`,
    );
    await device.leave();
  });
});
