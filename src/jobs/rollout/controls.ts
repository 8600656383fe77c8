import { badRequest } from '../../model/error.js';
import type { Millis } from '../../model/job.js';
import type { RolloutControls, Schedule } from '../../model/rollout.js';
import { windowCron } from './schedule.js';

/** The rollout controls of a create body, all optional (their shapes and ranges were checked by the API). */
export type ControlsInput = Partial<{ [K in keyof RolloutControls]: NonNullable<RolloutControls[K]> }>;

/**
 * What JSON Schema cannot say about the controls (CONTRACT §9): at most 2 decimals in a threshold,
 * a cron of 5 fields that croner takes, a known IANA zone, a start in the future and an end after
 * it. Each violation is a 400 naming the field. Answers the controls to store, as submitted.
 */
export function checkControls(input: ControlsInput, now: Millis): RolloutControls {
  for (const [index, rule] of (input.abort ?? []).entries()) {
    const hundredths = rule.threshold_percent * 100;
    if (Math.abs(hundredths - Math.round(hundredths)) > 1e-6) {
      throw badRequest(
        `abort[${index}].threshold_percent has more than 2 decimals: ${rule.threshold_percent}`,
      );
    }
  }
  if (input.schedule !== undefined) checkSchedule(input.schedule, now);
  return {
    rollout: input.rollout ?? null,
    abort: input.abort ?? null,
    retry: input.retry ?? null,
    schedule: input.schedule ?? null,
  };
}

function checkTime(text: string | undefined, field: string): Millis | undefined {
  if (text === undefined) return undefined;
  const time = Date.parse(text);
  if (Number.isNaN(time)) throw badRequest(`${field} is not an ISO 8601 time: '${text}'`);
  return time;
}

function checkSchedule(schedule: Schedule, now: Millis): void {
  const start = checkTime(schedule.start_time, 'schedule.start_time');
  const end = checkTime(schedule.end_time, 'schedule.end_time');
  if (start !== undefined && start <= now) {
    throw badRequest(`schedule.start_time must be in the future, not ${schedule.start_time}`);
  }
  if (end !== undefined && end <= (start ?? now)) {
    throw badRequest(
      start === undefined
        ? `schedule.end_time must be in the future, not ${schedule.end_time}`
        : `schedule.end_time must be after schedule.start_time (${schedule.start_time}), not ${schedule.end_time}`,
    );
  }
  for (const [index, window] of (schedule.windows ?? []).entries()) {
    const field = `schedule.windows[${index}]`;
    if (window.timezone !== undefined && !knownTimeZone(window.timezone)) {
      throw badRequest(`${field}.timezone is not an IANA time zone: '${window.timezone}'`);
    }
    if (window.cron.trim().split(/\s+/).length !== 5) {
      throw badRequest(`${field}.cron must have 5 fields (minute hour day month weekday): '${window.cron}'`);
    }
    let opens: Date | null;
    try {
      opens = windowCron(window).nextRun(new Date(now));
    } catch (error) {
      throw badRequest(`${field}.cron is not a valid cron: '${window.cron}' (${(error as Error).message})`);
    }
    if (opens === null) throw badRequest(`${field}.cron never matches: '${window.cron}'`);
  }
}

function knownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
