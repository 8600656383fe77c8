import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, expect, it } from 'vitest';
import { eventually, jobBecomes, type Service, startService, TestDevice } from './harness.js';

let service: Service | undefined;
const devices: TestDevice[] = [];

afterEach(async () => {
  for (const device of devices.splice(0)) device.client.end(true);
  await service?.stop();
});

/** A service whose log lines are kept, parsed, in `lines`. */
async function loggedService(lines: Record<string, unknown>[]): Promise<Service> {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line !== '') lines.push(JSON.parse(line));
      done();
    },
  });
  return startService({ logger: pino({ level: 'info' }, sink) });
}

it('logs "job finished" once, with its status and counts, when its last target ends', async () => {
  const lines: Record<string, unknown>[] = [];
  service = await loggedService(lines);
  const [first, second] = await service.addDevices(2);
  if (!first || !second) throw new Error('no devices');
  const a = await TestDevice.connect(service.mqttUrl, first.id, first.token);
  const b = await TestDevice.connect(service.mqttUrl, second.id, second.token);
  devices.push(a, b);
  const jobId = await service.createJob({ targets: { devices: [first.id, second.id] } });
  await a.next('request', jobId);
  await b.next('request', jobId);

  await a.status(jobId, { status: 'successful' });
  await eventually(
    async () =>
      (await service?.store.getJob(service.accountId, jobId))?.progress_success === 1 ? true : undefined,
    'first target counted',
  );
  expect(lines.filter((line) => line.msg === 'job finished')).toEqual([]);

  await b.status(jobId, { status: 'failed', message: 'no space' });
  await jobBecomes(service, jobId, 'complete');
  const finished = await eventually(async () => {
    const found = lines.filter((line) => line.msg === 'job finished');
    return found.length > 0 ? found : undefined;
  }, 'the job finished line');
  expect(finished).toEqual([
    expect.objectContaining({ job: jobId, status: 'complete', successful: 1, failed: 1, canceled: 0 }),
  ]);
  // a repeated report changes nothing and logs nothing more
  await b.status(jobId, { status: 'failed', message: 'no space' });
  await eventually(
    async () =>
      lines.some((line) => String(line.msg).startsWith('device status ignored')) ? true : undefined,
    'the repeat ignored',
  );
  expect(lines.filter((line) => line.msg === 'job finished')).toHaveLength(1);
});
