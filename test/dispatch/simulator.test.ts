import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Simulator } from '../../src/dispatch/simulator.js';
import { eventually, jobBecomes, type Service, startService, targetsOf } from './harness.js';

let service: Service;
let simulator: Simulator | null = null;

beforeEach(async () => {
  service = await startService();
});

afterEach(async () => {
  await simulator?.stop();
  simulator = null;
  await service.stop();
});

const allConnected = async (ids: string[]) => {
  for (const id of ids) {
    if ((await service.store.getDevice(service.accountId, id))?.connection_status !== 'connected')
      return false;
  }
  return true;
};

describe('the device simulator', () => {
  it('connects its devices, reports their state and answers every request, failing the given fraction', async () => {
    const devices = await service.addDevices(6);
    simulator = new Simulator({ mqttUrl: service.mqttUrl, devices, failRate: 0, latency: 0 });
    await simulator.start();
    const ids = devices.map((device) => device.id);
    await eventually(() => allConnected(ids), 'all devices connected');
    const device = await service.store.getDevice(service.accountId, ids[0] ?? '');
    expect(device).toMatchObject({ firmware_version: '1.0.0', health_status: 'normal' });

    const succeeding = await service.createJob({ targets: { devices: ids } });
    expect(await jobBecomes(service, succeeding, 'complete')).toMatchObject({ progress_success: 6 });

    simulator.options.failRate = 1;
    const failing = await service.createJob({ targets: { devices: ids } });
    expect(await jobBecomes(service, failing, 'failed')).toMatchObject({ progress_failures: 6 });
    expect(simulator.counts).toMatchObject({
      devices: 6,
      connected: 6,
      requests: 12,
      successful: 6,
      failed: 6,
    });
  });

  it('stops what is canceled and answers canceled', async () => {
    const devices = await service.addDevices(3);
    simulator = new Simulator({ mqttUrl: service.mqttUrl, devices, failRate: 0, latency: 60_000 });
    await simulator.start();
    const ids = devices.map((device) => device.id);
    await eventually(() => allConnected(ids), 'all devices connected');
    const jobId = await service.createJob({ targets: { devices: ids } });
    await eventually(async () => {
      const targets = [...(await targetsOf(service, jobId)).values()];
      return targets.every((target) => target.message === 'working');
    }, 'every device working');
    await service.jobs.cancelJobs(service.accountId, [jobId], false);
    const job = await eventually(async () => {
      const current = await service.store.getJob(service.accountId, jobId);
      return current?.progress_canceled === 3 ? current : undefined;
    }, 'every target canceled');
    expect(job).toMatchObject({ job_status: 'canceled', progress_pending: 0 });
    expect(simulator.counts.canceled).toBe(3);
  });

  it('fails chosen devices and a share of devices on every attempt, which retries and aborts see', async () => {
    const devices = await service.addDevices(8);
    const ids = devices.map((device) => device.id);
    simulator = new Simulator({
      mqttUrl: service.mqttUrl,
      devices,
      failRate: 0,
      failDevices: [ids[0] as string],
      failShare: 0.25,
      latency: 0,
    });
    await simulator.start();
    await eventually(() => allConnected(ids), 'all devices connected');
    const jobId = await service.createJob({ targets: { devices: ids }, retry: { failed: 1 } });
    const job = await jobBecomes(service, jobId, 'complete');
    // device 0 chosen, devices 3 and 7 the evenly spread quarter: each fails attempt 1 and its retry
    expect(job).toMatchObject({ progress_success: 5, progress_failures: 3 });
    const failed = [...(await targetsOf(service, jobId)).values()].filter(
      (target) => target.status === 'failed',
    );
    expect(failed.map((target) => [target.device_id, target.attempt])).toEqual(
      [ids[0], ids[3], ids[7]].map((id) => [id, 2]),
    );
    expect(simulator.counts).toMatchObject({ requests: 11, failed: 6, successful: 5 });
  });

  it('goes offline mid-job without answering, comes back and finishes the same attempt', async () => {
    const devices = await service.addDevices(3);
    simulator = new Simulator({
      mqttUrl: service.mqttUrl,
      devices,
      failRate: 0,
      offlineRate: 1,
      offlineMs: 300,
      latency: 0,
    });
    await simulator.start();
    const ids = devices.map((device) => device.id);
    await eventually(() => allConnected(ids), 'all devices connected');
    const jobId = await service.createJob({ targets: { devices: ids } });
    const job = await jobBecomes(service, jobId, 'complete');
    expect(job.progress_success).toBe(3);
    expect(simulator.counts.offline).toBe(3);
    for (const target of (await targetsOf(service, jobId)).values()) expect(target.attempt).toBe(1);
  });
});
