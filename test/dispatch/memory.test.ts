import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Simulator } from '../../src/dispatch/simulator.js';
import { eventually, type Service, startService } from './harness.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

/** The heap in use once garbage is collected, in bytes. */
const liveHeap = (): number => {
  collectGarbage();
  collectGarbage();
  return process.memoryUsage().heapUsed;
};

const DEVICES = 20;

let service: Service;
let simulator: Simulator;
let deviceIds: string[];

beforeEach(async () => {
  service = await startService();
  const devices = await service.addDevices(DEVICES);
  deviceIds = devices.map((device) => device.id);
  simulator = new Simulator({
    mqttUrl: service.mqttUrl,
    devices,
    failRate: 0,
    latency: 0,
  });
  await simulator.start();
});

afterEach(async () => {
  await simulator.stop();
  await service.stop();
});

/** Creates `jobs` jobs to every device and waits until they are all complete. */
async function runJobs(jobs: number): Promise<void> {
  const before = (await service.store.totals()).jobs.complete;
  for (let job = 0; job < jobs; job++) await service.createJob({ targets: { devices: deviceIds } });
  await eventually(
    async () => (await service.store.totals()).jobs.complete === before + jobs,
    'every job complete',
  );
}

describe('dispatch memory', () => {
  it('keeps next to nothing of a request once it is answered: 20,000 requests grow the heap by under 10 MB', async () => {
    await runJobs(300);
    const before = liveHeap();
    await runJobs(1_000);
    // Keeping ~1 KB a request (a reaction to a promise that lived as long as the service) grew it by
    // 20 MB; without, 3.5 MB (the simulated devices, in this process too, keep a little).
    expect(liveHeap() - before).toBeLessThan(10 * 1024 * 1024);
  }, 120_000);
});
