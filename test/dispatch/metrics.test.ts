import { afterEach, beforeEach, expect, it } from 'vitest';
import { eventually, jobBecomes, type Service, startService, TestDevice } from './harness.js';

let service: Service;
let device: TestDevice | undefined;

beforeEach(async () => {
  service = await startService();
});
afterEach(async () => {
  device?.client.end(true);
  await service.stop();
});

const count = async (name: string) => {
  const metric = await service.metrics.registry.getSingleMetric(name)?.get();
  return metric?.values[0]?.value ?? 0;
};

it('counts the requests handed to the broker and the status reports devices send', async () => {
  const [d] = await service.addDevices(1);
  if (!d) throw new Error('no device');
  device = await TestDevice.connect(service.mqttUrl, d.id, d.token);
  await device.announce('online');
  await eventually(async () => {
    const row = await service.store.getDevice(service.accountId, d.id);
    return row?.connection_status === 'connected' ? row : undefined;
  });
  const jobId = await service.createJob({ targets: { devices: [d.id] } });
  await device.next('request', jobId);
  expect(await count('fleetjobs_dispatch_publishes_total')).toBe(1);
  expect(await count('fleetjobs_status_reports_total')).toBe(0);
  await device.status(jobId, { status: 'successful' });
  await jobBecomes(service, jobId, 'complete');
  expect(await count('fleetjobs_status_reports_total')).toBe(1);
});
