// §7: a restart of the service (SIGTERM, then start on the same db) loses no job, target or status,
// starts with every device disconnected, and re-sends in_progress requests when a device announces.
import { afterAll, expect, it } from 'vitest';
import {
  createDevices,
  createJob,
  Device,
  getDevice,
  type Json,
  snapshot,
  until,
  waitJob,
} from './device.js';
import { deviceId, type Server, startServer } from './harness.js';

let server: Server | undefined;
const open: Device[] = [];

afterAll(async () => {
  await Promise.all(open.map((d) => d.end()));
  if (server) await server.stop();
});

async function online(s: Server, id: string, token: string): Promise<Device> {
  const d = await Device.connect(s.mqttPort, id, token);
  open.push(d);
  await until(`${id} connected`, async () =>
    (await getDevice(s, id)).connection_status === 'connected' ? true : undefined,
  );
  return d;
}

it('loses nothing across a restart and re-sends in_progress requests when the device announces online', async () => {
  const first = await startServer();
  server = first;
  first.defaultAuth = await first.user('mqtt-restart', 'mralice');
  const [live, sleeper] = await createDevices(first, [deviceId('E1'), deviceId('E1')]);
  if (!live || !sleeper) throw new Error('devices');
  const dev = await online(first, live.id, live.token);

  const running = await createJob(first, {
    job_type: 'send_message',
    description: 'survives',
    targets: { devices: [live.id] },
    payload: { keep: ['me'] },
    timeout: 300,
  });
  const waiting = await createJob(first, {
    job_type: 'reboot',
    targets: { devices: [sleeper.id] },
    payload: 1,
  });
  const done = await createJob(first, {
    job_type: 'command',
    targets: { devices: [live.id] },
    payload: 'ls',
  });
  const broke = await createJob(first, {
    job_type: 'command',
    targets: { devices: [live.id] },
    payload: 'rm',
  });
  const req = await dev.waitFor('request', running.id);
  await dev.waitFor('request', done.id);
  await dev.waitFor('request', broke.id);
  await dev.status(running.id, {
    status: 'in_progress',
    progress: 30,
    message: 'half way',
    response: { step: 3 },
  });
  await dev.status(done.id, { status: 'successful', progress: 100, response: { out: 'a\nb' } });
  await dev.status(broke.id, { status: 'failed', message: 'denied' });
  await waitJob(first, running.id, 'progress 30', (_j, ts) => ts[0].progress === 30);
  await waitJob(first, done.id, 'complete', (j) => j.job_status === 'complete');
  await waitJob(first, broke.id, 'failed', (j) => j.job_status === 'failed');
  await waitJob(
    first,
    waiting.id,
    'in_progress, queued',
    (j, ts) => j.job_status === 'in_progress' && ts[0].status === 'queued',
  );

  // timeouts survive a restart: one in progress (timeout 2 s), one queued (offline_timeout 2 s)
  const [slow, absent] = await createDevices(first, [deviceId('E1'), deviceId('E1')]);
  if (!slow || !absent) throw new Error('devices');
  const dslow = await online(first, slow.id, slow.token);
  const expiring = await createJob(first, {
    job_type: 'reboot',
    targets: { devices: [slow.id, absent.id] },
    timeout: 2,
    offline_timeout: 2,
  });
  await dslow.waitFor('request', expiring.id);
  await waitJob(first, expiring.id, 'in_progress + queued', (_j, ts) =>
    ts.some((t) => t.status === 'in_progress'),
  );

  const ids: number[] = [running.id, waiting.id, done.id, broke.id];
  const before = new Map<number, Json>();
  for (const id of ids) before.set(id, await snapshot(first, id));
  // The list apart from the job whose timeouts may fire while the service restarts (checked below).
  const listedSteady = (body: Json) => ({
    ...body,
    list: (body.list as Json[]).filter((job) => job.id !== expiring.id),
  });
  const listBefore = listedSteady((await first.get('/ws/v1/jobs/inventory')).body);
  const liveBefore = await getDevice(first, live.id);

  const { dir, db, port, mqttPort } = first;
  expect(await first.stop('SIGTERM', true)).toBe(0);
  server = undefined;
  await until('device saw the connection close', () => (dev.closed ? true : undefined));

  const second = await startServer({ reuse: { dir, db, port, mqttPort } });
  server = second;
  second.defaultAuth = first.defaultAuth;

  // every device is disconnected until it announces itself again
  const liveAfter = await getDevice(second, live.id);
  expect(liveAfter.connection_status).toBe('disconnected');
  expect(liveAfter.last_connect).toBe(liveBefore.last_connect);
  for (const id of ids) expect(await snapshot(second, id)).toEqual(before.get(id));
  expect(listedSteady((await second.get('/ws/v1/jobs/inventory')).body)).toEqual(listBefore);
  const one = (await second.get(`/ws/v1/jobs/${running.id}`)).body;
  expect(one).toMatchObject({ payload: { keep: ['me'] }, timeout: 300, targets: { devices: [live.id] } });

  // the in_progress request is sent again when the device announces online; finished ones are not
  const dev2 = await online(second, live.id, live.token);
  const again = await dev2.waitFor('request', running.id);
  expect(again.body).toEqual(req.body);
  // the queued request is delivered to the device that was never online
  const sleepy = await online(second, sleeper.id, sleeper.token);
  const q = await sleepy.waitFor('request', waiting.id);
  expect(q.body).toEqual({ job_id: waiting.id, job_type: 'reboot', payload: 1, timeout: 600, attempt: 1 });

  const exp = await waitJob(second, expiring.id, 'failed', (j) => j.job_status === 'failed');
  expect(exp.targets.map((t: Json) => t.status)).toEqual(['timed_out', 'timed_out']);

  await dev2.status(running.id, { status: 'successful', progress: 100 });
  await sleepy.status(waiting.id, { status: 'successful' });
  const r1 = await waitJob(second, running.id, 'complete', (j) => j.job_status === 'complete');
  expect(r1.targets[0]).toMatchObject({ status: 'successful', message: 'half way', progress: 100 });
  await waitJob(second, waiting.id, 'complete', (j) => j.job_status === 'complete');
  expect(dev2.received('request', done.id)).toEqual([]);
  expect(dev2.received('request', broke.id)).toEqual([]);
  expect(await snapshot(second, done.id)).toEqual(before.get(done.id));

  await Promise.all([dev2.offline(), sleepy.offline()]);
  expect(await second.stop()).toBe(0);
  server = undefined;
});
