import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseQuery } from '../../src/query/index.js';
import {
  eventually,
  jobBecomes,
  jobOf,
  type Service,
  startService,
  TestDevice,
  targetBecomes,
  targetsOf,
} from './harness.js';

/**
 * Rollouts with real devices over MQTT (CONTRACT §9): the dispatcher sends only what the rules of
 * src/jobs/rollout/ allow, measured from the devices' receive times.
 */

let service: Service;
const devices: TestDevice[] = [];

beforeEach(async () => {
  service = await startService();
});

afterEach(async () => {
  for (const device of devices.splice(0)) await device.client.endAsync(true);
  await service.stop();
});

interface Receipt {
  device: string;
  job: number;
  attempt: number;
  at: number;
}

/**
 * `count` connected devices that answer each request by `answer(device index, attempt)` (a status,
 * or null to keep it in progress), `answerAfter` ms after it came; recording when each request and
 * cancel came and when each answer went. A cancel stops an answer not yet sent: `canceled` instead.
 */
async function fleet(
  count: number,
  answer: (index: number, attempt: number) => string | null = () => 'successful',
  answerAfter = 0,
) {
  const created = await service.addDevices(count);
  const receipts: Receipt[] = [];
  const cancels: Receipt[] = [];
  const reports: (Receipt & { status: string })[] = [];
  for (const [index, { id, token }] of created.entries()) {
    const device = await TestDevice.connect(service.mqttUrl, id, token);
    devices.push(device);
    let attempt = 0;
    let waiting: NodeJS.Timeout | undefined;
    const report = (job: number, status: string) => {
      reports.push({ device: id, job, attempt, at: Date.now(), status });
      // A report still in flight when the test ends and its connection closes is of no interest.
      device.status(job, { status, message: `attempt ${attempt}` }).catch(() => undefined);
    };
    device.on('received', () => {
      const message = device.received.at(-1);
      if (message?.kind === 'cancel') {
        cancels.push({ device: id, job: message.jobId, attempt, at: Date.now() });
        if (waiting !== undefined) {
          clearTimeout(waiting);
          waiting = undefined;
          report(message.jobId, 'canceled');
        }
        return;
      }
      if (message?.kind !== 'request') return;
      attempt = message.body.attempt as number;
      receipts.push({ device: id, job: message.jobId, attempt, at: Date.now() });
      const status = answer(index, attempt);
      if (status === null) return;
      if (answerAfter === 0) report(message.jobId, status);
      else
        waiting = setTimeout(() => {
          waiting = undefined;
          report(message.jobId, status);
        }, answerAfter);
    });
  }
  await eventually(async () => {
    for (const { id } of created) {
      if ((await service.store.getDevice(service.accountId, id))?.connection_status !== 'connected')
        return false;
    }
    return true;
  }, 'devices connected');
  return { ids: created.map((device) => device.id), receipts, cancels, reports };
}

const gaps = (receipts: Receipt[]) =>
  receipts.slice(1).map((receipt, index) => receipt.at - (receipts[index] as Receipt).at);

describe('rollouts over MQTT', () => {
  it('paces sends 60/R seconds apart (max_per_minute 120: half a second)', async () => {
    const { ids, receipts } = await fleet(4);
    const job = await service.createJob({ targets: { devices: ids }, rollout: { max_per_minute: 120 } });
    const done = await jobBecomes(service, job, 'complete');
    expect(done).toMatchObject({ progress_success: 4, rollout_state: 'done' });
    expect(receipts).toHaveLength(4);
    // The pace is kept where the requests start (start_time); receipt times add the machine's jitter.
    const starts = [...(await targetsOf(service, job)).values()]
      .map((target) => target.start_time as number)
      .sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++)
      expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(500);
    const received = receipts.map((receipt) => receipt.at);
    expect((received.at(-1) as number) - (received[0] as number)).toBeGreaterThanOrEqual(3 * 450);
    expect(receipts.every((receipt) => receipt.attempt === 1)).toBe(true);
  });

  it('keeps at most max_in_flight targets in progress', async () => {
    const held: number[] = [];
    const { ids, receipts } = await fleet(5, (index) => {
      held.push(index);
      return null;
    });
    const job = await service.createJob({ targets: { devices: ids }, rollout: { max_in_flight: 2 } });
    await eventually(() => receipts.length === 2, 'two requests');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(receipts).toHaveLength(2);
    const first = devices.find((device) => device.id === receipts[0]?.device) as TestDevice;
    await first.status(job, { status: 'successful' });
    await eventually(() => receipts.length === 3, 'a third request once one ended');
    expect((await jobOf(service, job)).progress_pending).toBe(4);
  });

  it('aborts at the threshold: job canceled with its reason, nothing sent after', async () => {
    const { ids, receipts } = await fleet(6, () => 'failed');
    const job = await service.createJob({
      targets: { devices: ids },
      rollout: { max_in_flight: 1 },
      abort: [{ failure: 'failed', threshold_percent: 10, min_executed: 2, action: 'cancel' }],
    });
    const canceled = await jobBecomes(service, job, 'canceled');
    expect(canceled).toMatchObject({
      rollout_state: 'aborted',
      abort_reason: '100.00 % of 2 ended targets failed (threshold 10 %)',
      progress_failures: 2,
      progress_canceled: 4,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receipts).toHaveLength(2);
  });

  it('an abort that cancels tells the devices still working on the job', async () => {
    const { ids, receipts } = await fleet(3, (index) => (index < 2 ? 'failed' : null));
    const job = await service.createJob({
      targets: { devices: ids },
      abort: [{ failure: 'failed', threshold_percent: 50, min_executed: 2, action: 'cancel' }],
    });
    await jobBecomes(service, job, 'canceled');
    const working = devices.find((device) => device.id === ids[2]) as TestDevice;
    expect((await working.next('cancel', job)).body).toEqual({ job_id: job, force: false });
    expect(receipts).toHaveLength(3);
    expect(await jobOf(service, job)).toMatchObject({ rollout_state: 'aborted', progress_pending: 1 });
  });

  it('pauses by an abort rule once; after a resume the rule does not pause again', async () => {
    const { ids, receipts } = await fleet(4, (index) => (index === 0 ? 'failed' : 'successful'));
    const job = await service.createJob({
      targets: { devices: ids },
      rollout: { max_in_flight: 1 },
      abort: [{ failure: 'any', threshold_percent: 20, min_executed: 1, action: 'pause' }],
    });
    const paused = await eventually(async () => {
      const current = await jobOf(service, job);
      return current.rollout_state === 'paused' ? current : undefined;
    }, 'paused by the rule');
    expect(paused.job_status).toBe('in_progress');
    expect(paused.abort_reason).toMatch(/ended targets failed or timed out \(threshold 20 %\)/);
    const sent = receipts.length;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(receipts.length).toBe(sent);
    const resumed = await service.jobs.resumeJob(service.accountId, job);
    expect(resumed.ok).toBe(true);
    expect(await jobBecomes(service, job, 'complete')).toMatchObject({ rollout_state: 'done' });
    expect(receipts).toHaveLength(4);
  });

  it('retries a failed target with backoff as attempt 2 and 3 of the same job', async () => {
    const { ids, receipts } = await fleet(1, (_index, attempt) => (attempt < 3 ? 'failed' : 'successful'));
    const job = await service.createJob({
      targets: { devices: ids },
      retry: { failed: 2, delay_seconds: 1, backoff_factor: 2 },
    });
    const waiting = await eventually(async () => {
      const target = (await targetsOf(service, job)).get(ids[0] as string);
      return target?.next_attempt_time ? target : undefined;
    }, 'a retry pending');
    expect(waiting).toMatchObject({ status: 'queued', attempt: 1 });
    expect((await jobOf(service, job)).progress_pending).toBe(1);
    const done = await jobBecomes(service, job, 'complete');
    expect(done.progress_success).toBe(1);
    expect(receipts.map((receipt) => receipt.attempt)).toEqual([1, 2, 3]);
    const [toSecond, toThird] = gaps(receipts);
    expect(toSecond).toBeGreaterThanOrEqual(950);
    expect(toThird).toBeGreaterThanOrEqual(1950);
    expect((await targetsOf(service, job)).get(ids[0] as string)).toMatchObject({
      status: 'successful',
      attempt: 3,
      next_attempt_time: null,
    });
  });

  it('retries each failure type from its own budget: a timeout after a retried failure is tried again', async () => {
    const answers = [null, 'failed', null, 'successful'];
    const { ids, receipts } = await fleet(1, (_index, attempt) => answers[attempt] ?? null);
    const job = await service.createJob({
      targets: { devices: ids },
      timeout: 1,
      retry: { failed: 1, timed_out: 1 },
    });
    expect(await jobBecomes(service, job, 'complete')).toMatchObject({ progress_success: 1 });
    expect(receipts.map((receipt) => receipt.attempt)).toEqual([1, 2, 3]);
  });

  it('retries a target that timed out before its first send: attempt 1 once its device connects', async () => {
    const [device] = await service.addDevices(1);
    const { id, token } = device as { id: string; token: string };
    const job = await service.createJob({
      targets: { devices: [id] },
      offline_timeout: 1,
      retry: { timed_out: 1 },
    });
    const waiting = await eventually(async () => {
      const target = (await targetsOf(service, job)).get(id);
      return target?.next_attempt_time ? target : undefined;
    }, 'the timed-out target queued for its retry');
    expect(waiting).toMatchObject({ status: 'queued', attempt: 0, end_time: null });
    expect(await jobOf(service, job)).toMatchObject({ job_status: 'in_progress', progress_pending: 1 });
    const connected = await TestDevice.connect(service.mqttUrl, id, token);
    devices.push(connected);
    expect((await connected.next('request', job)).body).toMatchObject({ attempt: 1 });
    await connected.status(job, { status: 'successful' });
    expect(await jobBecomes(service, job, 'complete')).toMatchObject({ progress_success: 1 });
  });

  it('an abort reacts within a second of the threshold crossed: cancels at once, no request after it', async () => {
    // one request every 200 ms, each failing 500 ms after it came: the third failure crosses 50 %
    // while the two sent after it are in progress, and the next send is 100 ms away
    const { ids, receipts, cancels, reports } = await fleet(10, () => 'failed', 500);
    const job = await service.createJob({
      targets: { devices: ids },
      rollout: { max_per_minute: 300 },
      abort: [{ failure: 'failed', threshold_percent: 50, min_executed: 3, action: 'cancel' }],
    });
    const aborted = await jobBecomes(service, job, 'canceled');
    expect(aborted).toMatchObject({
      rollout_state: 'aborted',
      abort_reason: '100.00 % of 3 ended targets failed (threshold 50 %)',
    });
    const abortedAt = aborted.job_completion_time as number;
    const crossedAt = (reports.filter((report) => report.status === 'failed')[2] as Receipt).at;
    const working = receipts.length - 3;
    expect(working).toBeGreaterThan(0);
    await eventually(() => cancels.length === working, 'a cancel to each device still working');
    for (const cancel of cancels) expect(cancel.at - crossedAt).toBeLessThan(1000);
    // The abort's time is its transaction's clock; it takes effect at its commit, after which its
    // cancels go out: a request received after that time was taken before the commit, so its
    // target was in progress and its device was sent a cancel.
    const told = new Set(cancels.map((cancel) => cancel.device));
    expect(receipts.filter((receipt) => receipt.at > abortedAt && !told.has(receipt.device))).toEqual([]);
    const firstCancel = Math.min(...cancels.map((cancel) => cancel.at));
    expect(receipts.every((receipt) => receipt.at <= firstCancel + 100)).toBe(true);
    const sent = receipts.length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(receipts).toHaveLength(sent);
    // a device still working keeps the result it reported before its cancel came, if it did
    const settled = await eventually(async () => {
      const current = await jobOf(service, job);
      return current.progress_pending === 0 ? current : undefined;
    }, 'cancels acknowledged');
    expect(settled.progress_failures).toBeGreaterThanOrEqual(3);
    expect(settled.progress_failures + settled.progress_canceled).toBe(10);
  });

  it('sends nothing before start_time: the job is new and scheduled until then', async () => {
    const { ids, receipts } = await fleet(2);
    const start = Date.now() + 1500;
    const job = await service.createJob({
      targets: { devices: ids },
      schedule: { start_time: new Date(start).toISOString() },
    });
    expect(await jobOf(service, job)).toMatchObject({ job_status: 'new', rollout_state: 'scheduled' });
    await jobBecomes(service, job, 'complete');
    expect(Math.min(...receipts.map((receipt) => receipt.at))).toBeGreaterThanOrEqual(start);
  });

  it('pauses and resumes a job without controls; retries and cancels its targets in place', async () => {
    const { ids, receipts } = await fleet(3, (index, attempt) =>
      index === 0 && attempt === 1 ? 'failed' : null,
    );
    const job = await service.createJob({ targets: { devices: ids } });
    await eventually(() => receipts.length === 3, 'three requests');
    await targetBecomes(service, job, ids[0] as string, 'failed');
    const paused = await service.jobs.pauseJob(service.accountId, job);
    expect(paused).toMatchObject({ ok: true, value: { rollout_state: 'paused' } });
    const retried = await service.jobs.retryTargets(
      service.accountId,
      job,
      parseQuery("status = 'failed'", 'targets'),
    );
    expect(retried).toEqual({ count: 1, skipped: 0 });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(receipts).toHaveLength(3);
    await service.jobs.resumeJob(service.accountId, job);
    await eventually(() => receipts.length === 4, 'the retry sent after the resume');
    expect(receipts[3]).toMatchObject({ device: ids[0], attempt: 2 });
    const canceled = await service.jobs.cancelTargets(service.accountId, job, null, true);
    expect(canceled).toEqual({ count: 3, skipped: 0 });
    expect(await jobBecomes(service, job, 'complete')).toMatchObject({ progress_canceled: 3 });
  });
});
