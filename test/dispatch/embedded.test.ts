import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  connectRefused,
  eventually,
  jobBecomes,
  jobOf,
  type Service,
  startService,
  TestDevice,
  targetBecomes,
  targetsOf,
} from './harness.js';

let service: Service;
const devices: TestDevice[] = [];

const connect = async (id: string, token: string, options?: Parameters<typeof TestDevice.connect>[3]) => {
  const device = await TestDevice.connect(service.mqttUrl, id, token, options);
  devices.push(device);
  return device;
};

const deviceRow = async (id: string) => {
  const device = await service.store.getDevice(service.accountId, id);
  if (!device) throw new Error(`device ${id} not found`);
  return device;
};

const oneDevice = async () => {
  const [d] = await service.addDevices(1);
  if (!d) throw new Error('no device');
  return d;
};

/** A connected device that has received the request of a new job for it alone. */
const connectedWithRequest = async () => {
  const d = await oneDevice();
  const device = await connect(d.id, d.token);
  const jobId = await service.createJob({ targets: { devices: [d.id] } });
  await device.next('request', jobId);
  return { d, device, jobId };
};

beforeEach(async () => {
  service = await startService();
});

afterEach(async () => {
  for (const device of devices.splice(0)) device.client.end(true);
  await service.stop();
});

describe('presence', () => {
  it('online marks the device connected with last_connect; a clean goodbye disconnects it', async () => {
    const d = await oneDevice();
    expect((await deviceRow(d.id)).connection_status).toBe('disconnected');
    const device = await connect(d.id, d.token);
    const connected = await eventually(async () => {
      const row = await deviceRow(d.id);
      return row.connection_status === 'connected' ? row : undefined;
    });
    expect(connected.last_connect).not.toBeNull();
    await device.leave();
    const gone = await eventually(async () => {
      const row = await deviceRow(d.id);
      return row.connection_status === 'disconnected' ? row : undefined;
    });
    expect(gone.last_disconnect).toBeGreaterThanOrEqual(connected.last_connect ?? 0);
  });

  it('a connection that dies without a goodbye marks the device disconnected', async () => {
    const d = await oneDevice();
    const device = await connect(d.id, d.token);
    await eventually(async () => (await deviceRow(d.id)).connection_status === 'connected');
    device.drop();
    await eventually(async () => (await deviceRow(d.id)).connection_status === 'disconnected');
  });

  it('a connection that goes silent gets its Will when the keep-alive expires', async () => {
    const d = await oneDevice();
    const device = await TestDevice.connect(service.mqttUrl, d.id, d.token, { keepalive: 1 });
    devices.push(device);
    await eventually(async () => (await deviceRow(d.id)).connection_status === 'connected');
    // The device stops sending anything (no ping either), without closing its connection.
    device.client.stream.write = () => true;
    await eventually(
      async () => (await deviceRow(d.id)).connection_status === 'disconnected',
      'keep-alive expiry',
    );
  });

  it('a device that connected but never announced itself stays disconnected and gets nothing', async () => {
    const d = await oneDevice();
    const device = await connect(d.id, d.token, { announce: false });
    const jobId = await service.createJob({ targets: { devices: [d.id] } });
    await jobBecomes(service, jobId, 'in_progress');
    expect((await targetsOf(service, jobId)).get(d.id)?.status).toBe('queued');
    expect(device.received).toEqual([]);
    await device.announce('online');
    await device.next('request', jobId);
    await targetBecomes(service, jobId, d.id, 'in_progress');
  });
});

describe('authentication and topics', () => {
  it('refuses a wrong token, an unknown device, a client id other than the username, no password', async () => {
    const d = await oneDevice();
    const url = service.mqttUrl;
    expect(
      await connectRefused(url, { clientId: d.id, username: d.id, password: 'not-the-token-at-all' }),
    ).toBe(true);
    expect(await connectRefused(url, { clientId: d.id, username: d.id })).toBe(true);
    const stranger = '00000000-00000000-00000000-0000FFFF';
    expect(await connectRefused(url, { clientId: stranger, username: stranger, password: d.token })).toBe(
      true,
    );
    expect(await connectRefused(url, { clientId: 'someone-else', username: d.id, password: d.token })).toBe(
      true,
    );
    expect(await connectRefused(url, { clientId: d.id, username: d.id, password: d.token })).toBe(false);
  });

  it('accepts the id in lower case and talks to the device under the id as it connected', async () => {
    const d = await oneDevice();
    const lower = d.id.toLowerCase();
    const device = await connect(lower, d.token);
    const jobId = await service.createJob({ targets: { devices: [d.id] } });
    await device.next('request', jobId);
    await device.status(jobId, { status: 'successful' });
    await jobBecomes(service, jobId, 'complete');
  });

  it("refuses a publish under another device's id and a subscription outside the device's topics", async () => {
    const [a, b] = await service.addDevices(2);
    if (!a || !b) throw new Error('no device');
    const deviceB = await connect(b.id, b.token);
    const jobId = await service.createJob({ targets: { devices: [b.id] } });
    await deviceB.next('request', jobId);

    const deviceA = await connect(a.id, a.token);
    await expect(
      deviceA.client.subscribeAsync(`fleetjobs/${b.id}/jobs/+/request`, { qos: 1 }),
    ).rejects.toThrow(/Subscribe error/);
    expect(deviceA.client.connected).toBe(true);
    const closed = deviceA.closed();
    deviceA.client.publish(`fleetjobs/${b.id}/jobs/${jobId}/status`, JSON.stringify({ status: 'failed' }), {
      qos: 1,
    });
    await closed;
    // B's target is untouched and B can still finish it.
    expect((await targetsOf(service, jobId)).get(b.id)?.status).toBe('in_progress');
    await deviceB.status(jobId, { status: 'successful' });
    await jobBecomes(service, jobId, 'complete');
  });

  it('a token change or a deleted device ends the session at once; the old token no longer works', async () => {
    const [a, b] = await service.addDevices(2);
    if (!a || !b) throw new Error('no device');
    const deviceA = await connect(a.id, a.token);
    const closedA = deviceA.closed();
    const replaced = await service.jobs.replaceDeviceToken(service.accountId, a.id);
    await closedA;
    expect(await connectRefused(service.mqttUrl, { clientId: a.id, username: a.id, password: a.token })).toBe(
      true,
    );
    expect(
      await connectRefused(service.mqttUrl, {
        clientId: a.id,
        username: a.id,
        password: replaced.device_token,
      }),
    ).toBe(false);

    const deviceB = await connect(b.id, b.token);
    const closedB = deviceB.closed();
    await service.jobs.deleteDevice(service.accountId, b.id);
    await closedB;
    expect(await connectRefused(service.mqttUrl, { clientId: b.id, username: b.id, password: b.token })).toBe(
      true,
    );
  });
});

describe('jobs on devices', () => {
  it('delivers the request, applies progress and the result, and completes the job', async () => {
    const [a, b] = await service.addDevices(2);
    if (!a || !b) throw new Error('no device');
    const deviceA = await connect(a.id, a.token);
    const deviceB = await connect(b.id, b.token);
    await eventually(async () => (await deviceRow(b.id)).connection_status === 'connected');
    const jobId = await service.createJob({
      job_type: 'send_message',
      targets: { devices: [a.id, b.id] },
      payload: { text: 'hello' },
      timeout: 120,
    });
    const request = await deviceA.next('request', jobId);
    expect(request.body).toEqual({
      job_id: jobId,
      job_type: 'send_message',
      payload: { text: 'hello' },
      timeout: 120,
      attempt: 1,
    });
    await deviceB.next('request', jobId);
    expect((await jobOf(service, jobId)).job_status).toBe('in_progress');
    const started = await targetBecomes(service, jobId, a.id, 'in_progress');
    expect(started.start_time).not.toBeNull();

    await deviceA.status(jobId, { status: 'in_progress', progress: 40, message: 'downloading' });
    await eventually(async () => (await targetsOf(service, jobId)).get(a.id)?.progress === 40);
    await deviceA.status(jobId, { status: 'successful', message: 'done', response: { took: 3 } });
    const done = await targetBecomes(service, jobId, a.id, 'successful');
    expect(done).toMatchObject({ progress: 100, message: 'done', response: { took: 3 } });
    expect(done.end_time).not.toBeNull();
    expect(await jobOf(service, jobId)).toMatchObject({
      job_status: 'in_progress',
      progress_success: 1,
      progress_pending: 1,
    });

    await deviceB.status(jobId, { status: 'failed', message: 'no space' });
    const job = await jobBecomes(service, jobId, 'complete');
    expect(job).toMatchObject({
      progress_success: 1,
      progress_failures: 1,
      progress_pending: 0,
      progress_canceled: 0,
    });
    expect(job.job_completion_time).not.toBeNull();
  });

  it('a job whose every target failed is failed; repeated and late statuses change nothing', async () => {
    const { d, device, jobId } = await connectedWithRequest();
    await device.status(jobId, { status: 'failed', message: 'first' });
    await jobBecomes(service, jobId, 'failed');
    await device.status(jobId, { status: 'failed', message: 'first' });
    await device.status(jobId, { status: 'successful', message: 'late' });
    await device.status(jobId, { status: 'in_progress', progress: 10 });
    const target = (await targetsOf(service, jobId)).get(d.id);
    expect(target).toMatchObject({ status: 'failed', message: 'first' });
    expect(await jobOf(service, jobId)).toMatchObject({
      job_status: 'failed',
      progress_failures: 1,
      progress_success: 0,
    });
  });

  it('a target waits queued while its device is offline, is sent when it comes online, and sent again on reconnect', async () => {
    const d = await oneDevice();
    const jobId = await service.createJob({ targets: { devices: [d.id] } });
    await jobBecomes(service, jobId, 'in_progress');
    expect((await targetsOf(service, jobId)).get(d.id)?.status).toBe('queued');

    const first = await connect(d.id, d.token);
    await first.next('request', jobId);
    await targetBecomes(service, jobId, d.id, 'in_progress');
    first.drop();
    await eventually(async () => (await deviceRow(d.id)).connection_status === 'disconnected');

    const second = await connect(d.id, d.token);
    const again = await second.next('request', jobId);
    expect(again.body.job_id).toBe(jobId);
    await second.status(jobId, { status: 'successful' });
    await jobBecomes(service, jobId, 'complete');
  });
});

describe('cancel', () => {
  it('tells the device; its canceled acknowledgement cancels the target; the job is canceled at once', async () => {
    const [a, b] = await service.addDevices(2);
    if (!a || !b) throw new Error('no device');
    const deviceA = await connect(a.id, a.token);
    const jobId = await service.createJob({ targets: { devices: [a.id, b.id] } });
    await deviceA.next('request', jobId);
    await service.jobs.cancelJobs(service.accountId, [jobId], false);
    expect((await jobOf(service, jobId)).job_status).toBe('canceled');
    expect((await targetsOf(service, jobId)).get(b.id)?.status).toBe('canceled');
    const cancel = await deviceA.next('cancel', jobId);
    expect(cancel.body).toEqual({ job_id: jobId, force: false });
    expect((await targetsOf(service, jobId)).get(a.id)?.status).toBe('in_progress');
    await deviceA.status(jobId, { status: 'canceled' });
    await targetBecomes(service, jobId, a.id, 'canceled');
    expect(await jobOf(service, jobId)).toMatchObject({
      job_status: 'canceled',
      progress_canceled: 2,
      progress_pending: 0,
    });
  });

  it('a result the device reports before it sees the cancel wins; the job stays canceled', async () => {
    const { d, device, jobId } = await connectedWithRequest();
    await service.jobs.cancelJobs(service.accountId, [jobId], false);
    await device.status(jobId, { status: 'successful' });
    await targetBecomes(service, jobId, d.id, 'successful');
    await device.next('cancel', jobId);
    await device.status(jobId, { status: 'canceled' });
    expect((await targetsOf(service, jobId)).get(d.id)?.status).toBe('successful');
    expect(await jobOf(service, jobId)).toMatchObject({
      job_status: 'canceled',
      progress_success: 1,
      progress_pending: 0,
    });
  });

  it('force cancels in-progress targets at once (also after a plain cancel) and tells the device', async () => {
    const { d, device, jobId } = await connectedWithRequest();
    await service.jobs.cancelJobs(service.accountId, [jobId], false);
    await device.next('cancel', jobId);
    await service.jobs.cancelJobs(service.accountId, [jobId], true);
    expect((await targetsOf(service, jobId)).get(d.id)?.status).toBe('canceled');
    const forced = await device.next('cancel', jobId, 2);
    expect(forced.body).toEqual({ job_id: jobId, force: true });
    await device.status(jobId, { status: 'successful' });
    expect((await targetsOf(service, jobId)).get(d.id)?.status).toBe('canceled');
  });

  it('a cancel the device missed is sent again when it comes back, and the request is not', async () => {
    const { d, device: first, jobId } = await connectedWithRequest();
    await first.leave();
    await eventually(async () => (await deviceRow(d.id)).connection_status === 'disconnected');
    await service.jobs.cancelJobs(service.accountId, [jobId], false);
    const second = await connect(d.id, d.token);
    await second.next('cancel', jobId);
    expect(second.received.filter((m) => m.kind === 'request')).toEqual([]);
    await second.status(jobId, { status: 'canceled' });
    await targetBecomes(service, jobId, d.id, 'canceled');
  });
});

describe('timeouts', () => {
  it('an in-progress target past its timeout and a queued one past its offline_timeout become timed_out', async () => {
    const [online, offline] = await service.addDevices(2);
    if (!online || !offline) throw new Error('no device');
    const device = await connect(online.id, online.token);
    const running = await service.createJob({ targets: { devices: [online.id] }, timeout: 1 });
    await device.next('request', running);
    const waiting = await service.createJob({ targets: { devices: [offline.id] }, offline_timeout: 1 });
    const timedOut = await targetBecomes(service, running, online.id, 'timed_out');
    expect(timedOut.end_time).not.toBeNull();
    expect(await jobBecomes(service, running, 'failed')).toMatchObject({
      progress_failures: 1,
      progress_pending: 0,
    });
    await targetBecomes(service, waiting, offline.id, 'timed_out');
    await jobBecomes(service, waiting, 'failed');
    await device.status(running, { status: 'successful' });
    expect((await targetsOf(service, running)).get(online.id)?.status).toBe('timed_out');
  });
});

describe('device state', () => {
  it('updates the fields a device may report and last_update; ignores the others and wrong types', async () => {
    const d = await oneDevice();
    const device = await connect(d.id, d.token);
    await device.state({
      firmware_version: '2.1.0',
      signal_percent: 77,
      health_status: 'warning',
      vendor_id: 0xfe000002,
      group: '/Elsewhere',
      tags: ['sneaky'],
      name: 'renamed',
      connection_status: 'disconnected',
      ip: 12,
    });
    const row = await eventually(async () => {
      const current = await deviceRow(d.id);
      return current.firmware_version === '2.1.0' ? current : undefined;
    });
    expect(row).toMatchObject({
      signal_percent: 77,
      health_status: 'warning',
      vendor_id: 0xfe000002,
      group: '',
      tags: [],
      name: null,
      ip: null,
      connection_status: 'connected',
    });
    expect(row.last_update).not.toBeNull();
  });
});

describe('bad input', () => {
  it('malformed JSON, unknown status words, wrong types and jobs the device is no target of change nothing', async () => {
    const [a, b] = await service.addDevices(2);
    if (!a || !b) throw new Error('no device');
    const deviceA = await connect(a.id, a.token);
    const deviceB = await connect(b.id, b.token);
    const jobA = await service.createJob({ targets: { devices: [a.id] } });
    await deviceA.next('request', jobA);
    const jobB = await service.createJob({ targets: { devices: [b.id] } });
    await deviceB.next('request', jobB);

    await deviceA.status(jobA, '{not json');
    await deviceA.status(jobA, { status: 'done' });
    await deviceA.status(jobA, { status: 'successful', progress: 'all' });
    await deviceA.status(jobA, { status: 'successful', message: 5 });
    await deviceA.status(jobA, '[1,2]');
    await deviceA.status(jobB, { status: 'failed' });
    await deviceA.status(999_999, { status: 'failed' });
    await deviceA.client.publishAsync(`fleetjobs/${a.id}/presence`, 'maybe', { qos: 1 });
    await deviceA.client.publishAsync(`fleetjobs/${a.id}/state`, 'nonsense', { qos: 1 });

    expect((await targetsOf(service, jobA)).get(a.id)).toMatchObject({ status: 'in_progress', progress: 0 });
    expect((await targetsOf(service, jobB)).get(b.id)).toMatchObject({ status: 'in_progress', progress: 0 });
    // The service still works for both.
    await deviceA.status(jobA, { status: 'successful' });
    await deviceB.status(jobB, { status: 'successful' });
    await jobBecomes(service, jobA, 'complete');
    await jobBecomes(service, jobB, 'complete');
  });
});
