import { isFinishedJob, type JobStatus, type Millis } from '../../model/job.js';
import type { RolloutState, Schedule } from '../../model/rollout.js';
import { scheduleAt } from './schedule.js';

/**
 * A job's rollout state at `now` from what is stored: `aborted` (a rule canceled it) and `paused`
 * (a user or a rule) stay until changed; a finished job is `done`; otherwise the schedule says
 * `scheduled` (before start_time), `waiting_window` (outside every window) or `running`.
 */
export function rolloutStateAt(
  stored: RolloutState,
  jobStatus: JobStatus,
  schedule: Schedule | null,
  now: Millis,
): RolloutState {
  if (stored === 'aborted') return 'aborted';
  if (isFinishedJob(jobStatus)) return 'done';
  if (stored === 'paused') return 'paused';
  return scheduleAt(schedule, now).state;
}
