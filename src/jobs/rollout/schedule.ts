import { Cron } from 'croner';
import type { Millis } from '../../model/job.js';
import type { EndBehavior, MaintenanceWindow, RolloutState, Schedule } from '../../model/rollout.js';

const MINUTE = 60_000;

/** One parsed Cron per pattern and zone: parsing is the costly part, and jobs share windows. */
const crons = new Map<string, Cron>();

/** The window's cron in its zone (throws what croner says of a bad pattern or zone). */
export function windowCron(window: Pick<MaintenanceWindow, 'cron' | 'timezone'>): Cron {
  const timezone = window.timezone ?? 'UTC';
  const key = `${window.cron}\u0000${timezone}`;
  let cron = crons.get(key);
  if (cron === undefined) {
    cron = new Cron(window.cron, { timezone, paused: true, mode: '5-part' });
    crons.set(key, cron);
  }
  return cron;
}

/**
 * Whether `window` is open at `now`: its latest opening at or before `now` (wall-clock time in its
 * zone, daylight-saving changes included) is less than `duration_minutes` ago. A window that opens
 * at 23:00 for 3 hours is open at 01:30 the next day.
 */
export function windowOpen(window: MaintenanceWindow, now: Millis): boolean {
  const [opened] = windowCron(window).previousRuns(1, new Date(Math.floor(now / 1000) * 1000 + 1000));
  return opened !== undefined && now < opened.getTime() + window.duration_minutes * MINUTE;
}

/** When the next of `windows` opens after `now` (null: never). */
export function nextWindowOpening(windows: readonly MaintenanceWindow[], now: Millis): Millis | null {
  let next: Millis | null = null;
  for (const window of windows) {
    const at = windowCron(window).nextRun(new Date(now))?.getTime();
    if (at !== undefined && (next === null || at < next)) next = at;
  }
  return next;
}

/** What a schedule says at `now`: the rollout state it puts a running job in, and whether the end came. */
export interface ScheduleNow {
  state: Extract<RolloutState, 'scheduled' | 'running' | 'waiting_window'>;
  /** The end behaviour to apply now: `end_time` passed. */
  ended: EndBehavior | null;
}

export function scheduleAt(schedule: Schedule | null, now: Millis): ScheduleNow {
  if (schedule === null) return { state: 'running', ended: null };
  if (schedule.end_time !== undefined && now >= Date.parse(schedule.end_time)) {
    return { state: 'running', ended: schedule.end_behavior ?? 'stop' };
  }
  if (schedule.start_time !== undefined && now < Date.parse(schedule.start_time)) {
    return { state: 'scheduled', ended: null };
  }
  const windows = schedule.windows ?? [];
  if (windows.length > 0 && !windows.some((window) => windowOpen(window, now))) {
    return { state: 'waiting_window', ended: null };
  }
  return { state: 'running', ended: null };
}
