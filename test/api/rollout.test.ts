import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SETTLE_RULES } from '../../src/jobs/rollout/settle.js';
import type { Millis } from '../../src/model/job.js';
import type { Settled } from '../../src/store/store.js';
import { setConnection } from '../setup/presence.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

const HOUR = 3_600_000;
const inHours = (hours: number) => new Date(Date.now() + hours * HOUR).toISOString();

describe('rollout controls of a job (CONTRACT §9)', () => {
  let h: Harness;
  let bob: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    await h.devices(bob, 4);
  });
  afterAll(() => h.close());

  const body = (controls: Record<string, unknown>) => ({
    job_type: 'update_firmware',
    targets: { all: true },
    ...controls,
  });

  it('stores the controls with the job and echoes them in the single job only', async () => {
    const controls = {
      rollout: {
        max_per_minute: 120,
        exponential: { base_per_minute: 10, increment_factor: 2, after: 'succeeded', every: 50 },
        max_in_flight: 20,
      },
      abort: [{ failure: 'failed', threshold_percent: 12.5, min_executed: 16, action: 'pause' }],
      retry: { failed: 2, timed_out: 1, delay_seconds: 30, backoff_factor: 1.5 },
      schedule: {
        start_time: inHours(1),
        end_time: inHours(30),
        end_behavior: 'cancel',
        windows: [{ cron: '0 23 * * 1-5', duration_minutes: 180, timezone: 'Europe/Zurich' }],
      },
    };
    const created = await h.job(bob, body(controls));
    expect(created).toMatchObject({
      ...controls,
      job_status: 'new',
      rollout_state: 'scheduled',
      abort_reason: null,
    });
    expect((await h.get(bob, `/ws/v1/jobs/${created.id}`)).json()).toEqual(created);
    const listed = (await h.get(bob, `/ws/v1/jobs/inventory?query=id = ${created.id}`)).json().list[0];
    expect(listed).toMatchObject({ rollout_state: 'scheduled', abort_reason: null });
    expect(listed.rollout).toBeUndefined();

    const plain = await h.job(bob, { targets: { devices: [deviceId(1)] } });
    expect(plain).toMatchObject({
      rollout: null,
      abort: null,
      retry: null,
      schedule: null,
      rollout_state: 'running',
    });
  });

  it('queries and orders jobs by rollout_state and abort_reason, and shows targets with attempt', async () => {
    const scheduled = await h.job(bob, body({ schedule: { start_time: inHours(2) } }));
    const byState = (await h.get(bob, "/ws/v1/jobs/inventory?query=rollout_state = 'scheduled'")).json();
    expect(byState.list.map((job: { id: number }) => job.id)).toContain(scheduled.id);
    expect(byState.list.every((job: { rollout_state: string }) => job.rollout_state === 'scheduled')).toBe(
      true,
    );
    const ordered = await h.get(
      bob,
      '/ws/v1/jobs/inventory?orderby=rollout_state asc&query=abort_reason = empty',
    );
    expect(ordered.statusCode, ordered.body).toBe(200);
    const states = ordered.json().list.map((job: { rollout_state: string }) => job.rollout_state);
    expect(states).toEqual([...states].sort());
    expectError(await h.get(bob, "/ws/v1/jobs/inventory?query=rollout_state = 'sleeping'"), 400);

    const targets = (await h.get(bob, `/ws/v1/jobs/${scheduled.id}/targets?query=attempt = 0`)).json();
    expect(targets.count).toBe(4);
    expect(targets.list[0]).toMatchObject({ attempt: 0, next_attempt_time: null });
    const csv = await h.get(bob, '/ws/v1/jobs/bulk?fields=id,rollout_state,abort_reason');
    expect(csv.body.split('\r\n')[0]).toBe('id,rollout_state,abort_reason');
    expect((await h.get(bob, '/ws/v1/jobs/bulk')).body.split('\r\n')[0]).not.toContain('rollout_state');
  });

  it('refuses every bad control with a 400 naming the field, creating nothing', async () => {
    const before = (await h.get(bob, '/ws/v1/jobs/inventory')).json().count;
    const rule = { failure: 'any', threshold_percent: 10, min_executed: 10, action: 'cancel' };
    const ramp = { base_per_minute: 10, increment_factor: 2, after: 'notified', every: 10 };
    const window = { cron: '0 2 * * *', duration_minutes: 60 };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ rollout: { max_per_minute: 0 } }, /rollout\.max_per_minute/],
      [{ rollout: { max_per_minute: 100_001 } }, /rollout\.max_per_minute/],
      [{ rollout: { max_per_minute: 1.5 } }, /rollout\.max_per_minute/],
      [{ rollout: { max_per_minute: '60' } }, /rollout\.max_per_minute/],
      [{ rollout: { max_in_flight: 0 } }, /rollout\.max_in_flight/],
      [{ rollout: { per_minute: 5 } }, /rollout.*per_minute/],
      [{ rollout: { exponential: { ...ramp, increment_factor: 1 } } }, /increment_factor/],
      [{ rollout: { exponential: { ...ramp, increment_factor: 5.5 } } }, /increment_factor/],
      [{ rollout: { exponential: { ...ramp, after: 'sent' } } }, /after/],
      [{ rollout: { exponential: { ...ramp, every: 0 } } }, /every/],
      [
        { rollout: { exponential: { base_per_minute: 10, increment_factor: 2, after: 'notified' } } },
        /every/,
      ],
      [{ abort: [{ ...rule, threshold_percent: 100.5 }] }, /threshold_percent/],
      [
        { abort: [{ ...rule, threshold_percent: 12.345 }] },
        /abort\[0\]\.threshold_percent has more than 2 decimals/,
      ],
      [{ abort: [{ ...rule, failure: 'canceled' }] }, /failure/],
      [{ abort: [{ ...rule, min_executed: 0 }] }, /min_executed/],
      [{ abort: [{ ...rule, action: 'stop' }] }, /action/],
      [{ abort: [{ ...rule, extra: 1 }] }, /extra/],
      [{ abort: rule }, /abort/],
      [{ retry: { failed: 11 } }, /retry\.failed/],
      [{ retry: { timed_out: -1 } }, /retry\.timed_out/],
      [{ retry: { delay_seconds: 1.5 } }, /retry\.delay_seconds/],
      [{ retry: { delay_seconds: 86_401 } }, /retry\.delay_seconds/],
      [{ retry: { backoff_factor: 0.5 } }, /retry\.backoff_factor/],
      [{ retry: { backoff_factor: 11 } }, /retry\.backoff_factor/],
      [{ schedule: { start_time: 'tomorrow' } }, /schedule\.start_time/],
      [{ schedule: { start_time: inHours(-1) } }, /schedule\.start_time must be in the future/],
      [{ schedule: { start_time: inHours(2), end_time: inHours(1) } }, /schedule\.end_time must be after/],
      [{ schedule: { end_time: inHours(-1) } }, /schedule\.end_time must be in the future/],
      [{ schedule: { end_behavior: 'explode' } }, /end_behavior/],
      [
        { schedule: { windows: [{ ...window, cron: '0 2 * *' }] } },
        /schedule\.windows\[0\]\.cron must have 5 fields/,
      ],
      [
        { schedule: { windows: [{ ...window, cron: '0 0 2 * * *' }] } },
        /schedule\.windows\[0\]\.cron must have 5 fields/,
      ],
      [
        { schedule: { windows: [{ ...window, cron: '61 2 * * *' }] } },
        /schedule\.windows\[0\]\.cron is not a valid cron/,
      ],
      [
        { schedule: { windows: [{ ...window, cron: '0 0 31 2 *' }] } },
        /schedule\.windows\[0\]\.cron never matches/,
      ],
      [
        { schedule: { windows: [window, { ...window, timezone: 'Mars/Olympus' }] } },
        /schedule\.windows\[1\]\.timezone/,
      ],
      [{ schedule: { windows: [{ ...window, duration_minutes: 1441 }] } }, /duration_minutes/],
      [{ schedule: { windows: [{ cron: '0 2 * * *' }] } }, /duration_minutes/],
    ];
    for (const [controls, message] of cases) {
      const text = expectError(await h.post(bob, '/ws/v1/jobs/inventory', body(controls)), 400);
      expect(text, JSON.stringify(controls)).toMatch(message);
      expectError(await h.post(bob, '/ws/v1/jobs/preview', body(controls)), 400);
    }
    expect((await h.get(bob, '/ws/v1/jobs/inventory')).json().count).toBe(before);
  });

  it('takes the edges of every range', async () => {
    const created = await h.job(
      bob,
      body({
        rollout: { max_per_minute: 100_000, max_in_flight: 1 },
        abort: [{ failure: 'timed_out', threshold_percent: 0.01, min_executed: 1_000_000, action: 'cancel' }],
        retry: { failed: 0, timed_out: 10, delay_seconds: 86_400, backoff_factor: 10 },
        schedule: {
          windows: [{ cron: '*/5 * * * *', duration_minutes: 1440, timezone: 'America/New_York' }],
        },
      }),
    );
    expect(created.job_status).toBe('new');
  });

  it('pauses and resumes by id, answering like a cancel by id; 409 when finished or not paused', async () => {
    const mallory = await h.user('globex', 'mallory');
    const job = await h.job(bob, { targets: { all: true } });
    expectError(await h.put(bob, `/ws/v1/jobs/resume/${job.id}`), 409);
    const paused = await h.put(bob, `/ws/v1/jobs/pause/${job.id}`);
    expect(paused.statusCode, paused.body).toBe(200);
    expect(paused.json()).toMatchObject({ count: 1, list: [{ id: job.id, rollout_state: 'paused' }] });
    expect((await h.get(bob, "/ws/v1/jobs/inventory?query=rollout_state = 'paused'")).json().list).toEqual([
      expect.objectContaining({ id: job.id }),
    ]);
    expectError(await h.put(mallory, `/ws/v1/jobs/resume/${job.id}`), 404);
    expectError(await h.put(bob, '/ws/v1/jobs/pause/999999'), 404);
    expectError(await h.put(bob, '/ws/v1/jobs/pause/x'), 400);
    const resumed = await h.put(bob, `/ws/v1/jobs/resume/${job.id}`);
    expect(resumed.json()).toMatchObject({ count: 1, list: [{ id: job.id, rollout_state: 'running' }] });
    await h.put(bob, `/ws/v1/jobs/cancel/${job.id}`);
    expect(expectError(await h.put(bob, `/ws/v1/jobs/pause/${job.id}`), 409)).toMatch(/canceled/);
    expectError(await h.put(bob, `/ws/v1/jobs/resume/${job.id}`), 409);
    const readOnly = await h.user('acme', 'viewer', 'read_only');
    expectError(await h.put(readOnly, `/ws/v1/jobs/pause/${job.id}`), 403);
  });

  it('cancels and retries targets by query in place, answering count and skipped', async () => {
    const job = await h.job(bob, { targets: { all: true } });
    const cancel = await h.put(
      bob,
      `/ws/v1/jobs/${job.id}/targets/cancel?query=device_id <= '${deviceId(2)}'`,
    );
    expect(cancel.statusCode, cancel.body).toBe(200);
    expect(cancel.json()).toEqual({ count: 2, skipped: 0 });
    const again = await h.put(
      bob,
      `/ws/v1/jobs/${job.id}/targets/cancel?query=device_id <= '${deviceId(2)}'`,
    );
    expect(again.json()).toEqual({ count: 0, skipped: 2 });
    expect((await h.get(bob, `/ws/v1/jobs/${job.id}`)).json()).toMatchObject({
      progress_canceled: 2,
      progress_pending: 2,
    });
    expect((await h.put(bob, `/ws/v1/jobs/${job.id}/targets/cancel`)).json()).toEqual({
      count: 2,
      skipped: 2,
    });
    const finished = (await h.get(bob, `/ws/v1/jobs/${job.id}`)).json();
    expect(finished).toMatchObject({ job_status: 'complete', rollout_state: 'done', progress_canceled: 4 });

    const retry = await h.put(
      bob,
      `/ws/v1/jobs/${job.id}/targets/retry?query=status = 'canceled' and device_id <> '${deviceId(4)}'`,
    );
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json()).toEqual({ count: 3, skipped: 0 });
    expect((await h.get(bob, `/ws/v1/jobs/${job.id}`)).json()).toMatchObject({
      job_status: 'in_progress',
      job_completion_time: null,
      rollout_state: 'running',
      progress_canceled: 1,
      progress_pending: 3,
    });
    const queued = (await h.get(bob, `/ws/v1/jobs/${job.id}/targets?query=status = 'queued'`)).json();
    expect(queued.count).toBe(3);
    expect((await h.put(bob, `/ws/v1/jobs/${job.id}/targets/retry?query=status = 'queued'`)).json()).toEqual({
      count: 0,
      skipped: 3,
    });
    expectError(await h.put(bob, `/ws/v1/jobs/${job.id}/targets/retry?query=nonsense = 1`), 400);
    expectError(await h.put(bob, '/ws/v1/jobs/999999/targets/retry'), 404);
    const mallory = await h.user('globex', 'mallory2');
    expectError(await h.put(mallory, `/ws/v1/jobs/${job.id}/targets/cancel`), 404);
  });

  /**
   * The store's side of a rollout without a dispatcher, at chosen times: the job started, its
   * queued targets sent, device reports and timeouts applied under the rules the dispatcher uses.
   */
  async function drive(caller: Caller, controls: Record<string, unknown>, devices: string[]) {
    const job = await h.job(caller, { targets: { devices }, timeout: 60, offline_timeout: 60, ...controls });
    const start = Date.now();
    expect(await h.store.moveRolloutState(job.id, 'running', 'running', start)).toBe(true);
    let sendSeq = 0;
    const settled: Settled[] = [];
    const onSettled = (what: Settled) => settled.push(what);
    return {
      job: job.id,
      start,
      settled,
      send: async (now: Millis) =>
        (
          await h.store.takeRolloutRequests(
            {
              jobId: job.id,
              sendSeq: sendSeq++,
              limit: 10,
              nextSendAt: () => null,
              afterDeviceId: '',
              skipDeviceIds: [],
            },
            now,
          )
        ).map((request) => [request.device_id, request.attempt]),
      report: (device: string, status: 'failed' | 'successful', now: Millis) =>
        h.store.applyStatuses(
          [{ job_id: job.id, device_id: device, report: { status } }],
          now,
          SETTLE_RULES,
          onSettled,
        ),
      expire: (now: Millis) => h.store.expireTargets(now, 100, SETTLE_RULES, onSettled),
      target: async (device: string) =>
        (await h.get(caller, `/ws/v1/jobs/${job.id}/targets?query=device_id = '${device}'`)).json().list[0],
      get: async () => (await h.get(caller, `/ws/v1/jobs/${job.id}`)).json(),
    };
  }

  it('retries each failure type from its own budget, a target that timed out before its first send too', async () => {
    const carol = await h.user('initech', 'carol');
    const [sent, offline] = (await h.devices(carol, 2, () => ({}), 7)).map((device) => device.id) as [
      string,
      string,
    ];
    await setConnection(h.store, sent, 'connected', Date.now());
    const run = await drive(carol, { retry: { failed: 1, timed_out: 1 } }, [sent, offline]);
    const { start } = run;
    expect(await run.send(start + 1)).toEqual([[sent, 1]]);
    await run.report(sent, 'failed', start + 2);
    expect(await run.target(sent)).toMatchObject({ status: 'queued', attempt: 1 });
    expect(await run.send(start + 3)).toEqual([[sent, 2]]);
    // attempt 2 of one target times out in progress, the other target times out never sent:
    // both have their timed_out retry left (the failed one used is not counted against it)
    const timedOut = start + 61_000;
    expect(await run.expire(timedOut)).toBe(2);
    for (const device of [sent, offline]) {
      expect(await run.target(device)).toMatchObject({
        status: 'queued',
        next_attempt_time: expect.any(String),
      });
    }
    expect(await run.get()).toMatchObject({
      job_status: 'in_progress',
      progress_pending: 2,
      progress_failures: 0,
    });
    await setConnection(h.store, offline, 'connected', timedOut);
    expect((await run.send(timedOut + 1)).sort()).toEqual(
      [
        [sent, 3],
        [offline, 1],
      ].sort(),
    );
    // now each has used the retry of the type that ends it
    await run.report(sent, 'failed', timedOut + 2);
    expect(await run.expire(timedOut + 62_000)).toBe(1);
    expect(await run.target(sent)).toMatchObject({ status: 'failed', attempt: 3, next_attempt_time: null });
    expect(await run.target(offline)).toMatchObject({
      status: 'timed_out',
      attempt: 1,
      next_attempt_time: null,
    });
    expect(await run.get()).toMatchObject({
      job_status: 'failed',
      progress_pending: 0,
      progress_failures: 2,
    });
  });

  it('an abort rule that cancels answers, once committed, the devices to tell at once', async () => {
    const dave = await h.user('umbrella', 'dave');
    const ids = (await h.devices(dave, 3, () => ({}), 8)).map((device) => device.id) as [
      string,
      string,
      string,
    ];
    // the third stays offline: queued when the rule fires
    for (const id of ids.slice(0, 2)) await setConnection(h.store, id, 'connected', Date.now());
    const run = await drive(
      dave,
      { abort: [{ failure: 'failed', threshold_percent: 10, min_executed: 1, action: 'cancel' }] },
      ids,
    );
    const [first, second] = (await run.send(run.start + 1)).map(([device]) => device as string) as [
      string,
      string,
    ];
    await run.report(first, 'failed', run.start + 2);
    expect(run.settled).toEqual([
      {
        finished: [
          expect.objectContaining({ id: run.job, job_status: 'canceled', rollout_state: 'aborted' }),
        ],
        cancels: [{ job_id: run.job, device_id: second, force: false }],
      },
    ]);
    expect(await run.get()).toMatchObject({
      progress_failures: 1,
      progress_canceled: 1,
      progress_pending: 1,
    });
    await setConnection(h.store, ids[2], 'connected', run.start + 3);
    expect(await run.send(run.start + 4)).toEqual([]);
  });
});
