import { describe, expect, it } from 'vitest';
import { firedAbortRule } from '../../src/jobs/rollout/abort.js';
import { ratePerMinute, sendAllowance, sendSlots } from '../../src/jobs/rollout/pacing.js';
import { nextAttemptTime } from '../../src/jobs/rollout/retry.js';
import { nextWindowOpening, scheduleAt, windowOpen } from '../../src/jobs/rollout/schedule.js';
import { rolloutStateAt } from '../../src/jobs/rollout/state.js';
import type { AbortRule, MaintenanceWindow, RolloutRate } from '../../src/model/rollout.js';

const at = (iso: string) => Date.parse(iso);
const T0 = at('2026-12-01T12:00:00.000Z');

describe('ratePerMinute', () => {
  const ramp = (after: 'notified' | 'succeeded'): RolloutRate => ({
    exponential: { base_per_minute: 10, increment_factor: 2, after, every: 100 },
  });
  it.each<[string, RolloutRate | null, { notified: number; succeeded: number }, number | null]>([
    ['no rate', null, { notified: 0, succeeded: 0 }, null],
    ['only max_in_flight', { max_in_flight: 5 }, { notified: 0, succeeded: 0 }, null],
    ['max_per_minute', { max_per_minute: 120 }, { notified: 500, succeeded: 0 }, 120],
    ['ramp at its base', ramp('notified'), { notified: 99, succeeded: 0 }, 10],
    ['ramp after 100 notified', ramp('notified'), { notified: 100, succeeded: 0 }, 20],
    ['ramp after 350 notified', ramp('notified'), { notified: 350, succeeded: 0 }, 80],
    ['ramp by succeeded ignores notified', ramp('succeeded'), { notified: 350, succeeded: 199 }, 20],
    [
      'ramp capped by max_per_minute',
      { ...ramp('notified'), max_per_minute: 50 },
      { notified: 1000, succeeded: 0 },
      50,
    ],
    ['ramp capped at 100,000', ramp('notified'), { notified: 100_000, succeeded: 0 }, 100_000],
  ])('%s', (_name, rate, counts, expected) => {
    expect(ratePerMinute(rate, counts)).toBe(expected);
  });
});

describe('sendSlots: sends at least 60/R seconds apart, never in bursts', () => {
  const TICK = 100;
  it.each<[string, number | null, number | null, number, number, number | null]>([
    // name, rate, next_send_at, now, slots now, next_send_at after all of them
    ['no rate: unlimited', null, null, T0, Number.POSITIVE_INFINITY, null],
    ['first send of 60/min', 60, null, T0, 1, T0 + 1000],
    ['60/min before its slot', 60, T0 + 1, T0, 0, T0 + 1],
    ['60/min at its slot', 60, T0, T0, 1, T0 + 1000],
    ['60/min long idle: still one, a second from now', 60, T0 - 3_600_000, T0, 1, T0 + 1000],
    ['120/min: half a second apart', 120, T0 - 100, T0, 1, T0 + 500],
    ['6000/min: 10 per tick of 100 ms at most', 6000, T0 - 60_000, T0, 10, T0 + 10],
    ['6000/min right on time: one', 6000, T0, T0, 1, T0 + 10],
    ['6000/min 50 ms late: 6', 6000, T0 - 50, T0, 6, T0 + 10],
  ])('%s', (_name, rate, next, now, count, after) => {
    const slots = sendSlots(rate, next, now, TICK);
    expect(slots.count).toBe(count);
    expect(slots.nextSendAt(Number.isFinite(count) ? count : 0)).toBe(after);
  });

  it('keeps 60/R between sends over a simulated minute of ticks, at any tick phase', () => {
    for (const rate of [1, 7, 60, 120, 599]) {
      let next: number | null = null;
      const sends: number[] = [];
      for (let now = T0; now < T0 + 60_000; now += 37) {
        const slots = sendSlots(rate, next, now, TICK);
        if (slots.count > 0) {
          sends.push(now);
          next = slots.nextSendAt(1);
        }
      }
      const gaps = sends.slice(1).map((time, index) => time - (sends[index] as number));
      expect(Math.min(...gaps), `rate ${rate}`).toBeGreaterThanOrEqual(Math.floor(60_000 / rate));
      expect(sends.length, `rate ${rate}`).toBeLessThanOrEqual(rate);
      expect(sends.length, `rate ${rate}`).toBeGreaterThanOrEqual(Math.floor(rate * 0.9));
    }
  });
});

describe('sendAllowance: max_in_flight with or without a rate', () => {
  const unlimited = sendSlots(null, null, T0, 100);
  it.each<[string, RolloutRate | null, number, number, number]>([
    ['no limit', null, 1000, 50, Number.POSITIVE_INFINITY],
    ['room left', { max_in_flight: 10 }, 4, 50, 6],
    ['full', { max_in_flight: 10 }, 10, 50, 0],
    ['over (limit lowered by nobody, counted late)', { max_in_flight: 10 }, 12, 50, 0],
    ['rate allows fewer', { max_in_flight: 10, max_per_minute: 60 }, 0, 1, 1],
  ])('%s', (_name, rate, inFlight, slotCount, expected) => {
    const slots = slotCount === 50 ? unlimited : { count: slotCount, nextSendAt: () => null };
    expect(sendAllowance(rate, slots, inFlight)).toBe(expected);
  });
});

describe('firedAbortRule', () => {
  const rule = (overrides: Partial<AbortRule>): AbortRule => ({
    failure: 'failed',
    threshold_percent: 10,
    min_executed: 10,
    action: 'cancel',
    ...overrides,
  });
  const ended = (successful: number, failed: number, timed_out = 0) => ({ successful, failed, timed_out });
  it.each<[string, AbortRule[], ReturnType<typeof ended>, number, string | null]>([
    ['below min_executed', [rule({})], ended(5, 4), 0, null],
    ['at the threshold: not above it', [rule({})], ended(9, 1), 0, null],
    [
      'above the threshold',
      [rule({})],
      ended(14, 2),
      0,
      '12.50 % of 16 ended targets failed (threshold 10 %)',
    ],
    ['timed out targets do not count as failed', [rule({})], ended(14, 0, 2), 0, null],
    [
      'timed_out rule',
      [rule({ failure: 'timed_out', threshold_percent: 5.25 })],
      ended(18, 0, 2),
      0,
      '10.00 % of 20 ended targets timed out (threshold 5.25 %)',
    ],
    [
      'any counts both',
      [rule({ failure: 'any', threshold_percent: 20 })],
      ended(7, 1, 2),
      0,
      '30.00 % of 10 ended targets failed or timed out (threshold 20 %)',
    ],
    ['a rule fires once', [rule({})], ended(14, 2), 0b1, null],
    [
      'the next rule fires after the first did',
      [rule({}), rule({ threshold_percent: 12, action: 'pause' })],
      ended(14, 2),
      0b1,
      '12.50 % of 16 ended targets failed (threshold 12 %)',
    ],
    [
      'threshold 0: the first failure',
      [rule({ threshold_percent: 0, min_executed: 1 })],
      ended(0, 1),
      0,
      '100.00 % of 1 ended targets failed (threshold 0 %)',
    ],
    ['threshold 100 never fires', [rule({ threshold_percent: 100, min_executed: 1 })], ended(0, 5), 0, null],
    [
      'two decimals compared exactly',
      [rule({ threshold_percent: 33.33, min_executed: 3 })],
      ended(2, 1),
      0,
      '33.33 % of 3 ended targets failed (threshold 33.33 %)',
    ],
  ])('%s', (_name, rules, counts, fired, reason) => {
    expect(firedAbortRule(rules, counts, fired)?.reason ?? null).toBe(reason);
  });
  it('no rules, nothing fires', () => expect(firedAbortRule(null, ended(0, 100), 0)).toBeNull());
});

describe('nextAttemptTime: each failure type has its own retries; attempt n waits delay × factor^(n-2)', () => {
  const policy = { failed: 3, timed_out: 1, delay_seconds: 10, backoff_factor: 2 };
  // name, how the target ended, its attempts started, retries used of each type, when it is due
  it.each<[string, 'failed' | 'timed_out', number, [number, number], number | null]>([
    ['attempt 1 failed: attempt 2 after 10 s', 'failed', 1, [0, 0], T0 + 10_000],
    ['attempt 2 failed: attempt 3 after 20 s', 'failed', 2, [1, 0], T0 + 20_000],
    ['attempt 3 failed: attempt 4 after 40 s', 'failed', 3, [2, 0], T0 + 40_000],
    ['attempt 4 failed: its 3 failed retries used', 'failed', 4, [3, 0], null],
    ['attempt 1 timed out: attempt 2 after 10 s', 'timed_out', 1, [0, 0], T0 + 10_000],
    [
      'attempt 2 timed out after a failed retry: its timed_out retry is left',
      'timed_out',
      2,
      [1, 0],
      T0 + 20_000,
    ],
    ['attempt 2 timed out after a timed_out retry: its one retry used', 'timed_out', 2, [0, 1], null],
    ['attempt 3 failed after a timed_out retry: failed retries left', 'failed', 3, [1, 1], T0 + 40_000],
    ['never sent (timed out queued): attempt 1 after the delay', 'timed_out', 0, [0, 0], T0 + 10_000],
    ['timed out queued again, waiting for attempt 3: its one retry used', 'timed_out', 2, [1, 1], null],
    ['timed out queued waiting for attempt 2: attempt 2 after 10 s', 'timed_out', 1, [1, 0], T0 + 10_000],
  ])('%s', (_name, status, attempt, [failed, timedOut], expected) => {
    const target = { attempt, failed_retries: failed, timed_out_retries: timedOut };
    expect(nextAttemptTime(policy, status, target, T0)).toBe(expected);
  });
  it.each<[string, Parameters<typeof nextAttemptTime>[0], number | null]>([
    ['no policy', null, null],
    ['defaults: no delay', { failed: 1 }, T0],
    ['a fractional factor', { failed: 5, delay_seconds: 3, backoff_factor: 1.5 }, T0 + 6750],
    ['no retries of that kind', { timed_out: 3 }, null],
  ])('%s', (_name, given, expected) => {
    const attempt = given?.failed === 5 ? 3 : 1;
    const target = { attempt, failed_retries: attempt - 1, timed_out_retries: 0 };
    expect(nextAttemptTime(given, 'failed', target, T0)).toBe(expected);
  });
});

describe('maintenance windows', () => {
  const zurich: MaintenanceWindow = { cron: '0 2 * * *', duration_minutes: 60, timezone: 'Europe/Zurich' };
  const lateNight: MaintenanceWindow = { cron: '30 23 * * *', duration_minutes: 120 };
  it.each<[string, MaintenanceWindow, string, boolean]>([
    ['Zurich winter 02:00 CET = 01:00Z: open', zurich, '2026-01-15T01:00:00.000Z', true],
    ['Zurich winter 02:59:59 CET: open', zurich, '2026-01-15T01:59:59.999Z', true],
    ['Zurich winter 03:00 CET: closed', zurich, '2026-01-15T02:00:00.000Z', false],
    ['Zurich winter 01:59 CET: closed', zurich, '2026-01-15T00:59:00.000Z', false],
    ['Zurich summer 02:00 CEST = 00:00Z: open', zurich, '2026-07-15T00:30:00.000Z', true],
    ['Zurich summer 01:30Z (03:30 CEST): closed', zurich, '2026-07-15T01:30:00.000Z', false],
    // 29 March 2026: 02:00 does not exist in Zurich; croner opens the window at 03:00 CEST (01:00Z)
    ['spring forward: 02:00 skipped, opens at 03:00 CEST', zurich, '2026-03-29T01:30:00.000Z', true],
    ['spring forward: closed before', zurich, '2026-03-29T00:30:00.000Z', false],
    // 25 October 2026: 02:00 CEST happens, then 02:00 CET: the window opens once, at the first
    ['fall back: open at the first 02:00 (00:00Z)', zurich, '2026-10-25T00:30:00.000Z', true],
    ['crosses midnight: open at 23:45', lateNight, '2026-12-01T23:45:00.000Z', true],
    ['crosses midnight: open at 01:29 the next day', lateNight, '2026-12-02T01:29:00.000Z', true],
    ['crosses midnight: closed at 01:30', lateNight, '2026-12-02T01:30:00.000Z', false],
    ['crosses midnight: closed at 23:29', lateNight, '2026-12-01T23:29:00.000Z', false],
    [
      'weekdays only: closed on a Saturday',
      { cron: '0 9 * * 1-5', duration_minutes: 480, timezone: 'America/New_York' },
      '2026-12-05T15:00:00.000Z',
      false,
    ],
    [
      'weekdays only: open on a Friday 10:00 EST',
      { cron: '0 9 * * 1-5', duration_minutes: 480, timezone: 'America/New_York' },
      '2026-12-04T15:00:00.000Z',
      true,
    ],
  ])('%s', (_name, window, time, open) => {
    expect(windowOpen(window, at(time))).toBe(open);
  });

  it('tells when the next window opens', () => {
    expect(nextWindowOpening([zurich, lateNight], at('2026-12-01T12:00:00.000Z'))).toBe(
      at('2026-12-01T23:30:00.000Z'),
    );
    expect(nextWindowOpening([zurich], at('2026-03-28T12:00:00.000Z'))).toBe(at('2026-03-29T01:00:00.000Z'));
  });
});

describe('scheduleAt and rolloutStateAt', () => {
  const schedule = {
    start_time: '2026-12-01T12:00:00.000Z',
    end_time: '2026-12-03T12:00:00.000Z',
    windows: [{ cron: '0 22 * * *', duration_minutes: 240 }],
  };
  it.each<[string, typeof schedule | null, string, ReturnType<typeof scheduleAt>]>([
    ['no schedule', null, '2026-12-01T00:00:00.000Z', { state: 'running', ended: null }],
    ['before start', schedule, '2026-12-01T11:59:59.999Z', { state: 'scheduled', ended: null }],
    [
      'started, outside the window',
      schedule,
      '2026-12-01T12:00:00.000Z',
      { state: 'waiting_window', ended: null },
    ],
    ['in the window', schedule, '2026-12-02T01:00:00.000Z', { state: 'running', ended: null }],
    [
      'at the end: stop by default',
      schedule,
      '2026-12-03T12:00:00.000Z',
      { state: 'running', ended: 'stop' },
    ],
  ])('%s', (_name, given, time, expected) => {
    expect(scheduleAt(given, at(time))).toEqual(expected);
  });
  it('end_behavior given', () => {
    expect(scheduleAt({ end_time: '2026-12-01T00:00:00.000Z', end_behavior: 'force_cancel' }, T0).ended).toBe(
      'force_cancel',
    );
  });

  it.each<[string, Parameters<typeof rolloutStateAt>, string]>([
    ['a job without controls runs', ['running', 'in_progress', null, T0], 'running'],
    ['then is done', ['running', 'complete', null, T0], 'done'],
    ['canceled by a user: done', ['paused', 'canceled', null, T0], 'done'],
    ['aborted stays aborted', ['aborted', 'canceled', null, T0], 'aborted'],
    [
      'paused stays paused, even in a window',
      ['paused', 'in_progress', schedule, at('2026-12-02T01:00:00.000Z')],
      'paused',
    ],
    ['scheduled before start', ['running', 'new', schedule, T0 - 1], 'scheduled'],
    ['waiting for the window', ['scheduled', 'in_progress', schedule, T0], 'waiting_window'],
    [
      'running in the window',
      ['waiting_window', 'in_progress', schedule, at('2026-12-01T22:00:00.000Z')],
      'running',
    ],
  ])('%s', (_name, args, expected) => {
    expect(rolloutStateAt(...args)).toBe(expected);
  });
});
