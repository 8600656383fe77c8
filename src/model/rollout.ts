/** The rollout controls a job may carry (CONTRACT §9), as submitted and stored with the job. */

export const ROLLOUT_STATES = [
  'scheduled',
  'running',
  'paused',
  'waiting_window',
  'aborted',
  'done',
] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

export const ABORT_FAILURES = ['failed', 'timed_out', 'any'] as const;
export type AbortFailure = (typeof ABORT_FAILURES)[number];
export const ABORT_ACTIONS = ['cancel', 'pause'] as const;
export type AbortAction = (typeof ABORT_ACTIONS)[number];
export const RAMP_COUNTS = ['notified', 'succeeded'] as const;
export const END_BEHAVIORS = ['stop', 'cancel', 'force_cancel'] as const;
export type EndBehavior = (typeof END_BEHAVIORS)[number];

export interface ExponentialRamp {
  base_per_minute: number;
  increment_factor: number;
  after: (typeof RAMP_COUNTS)[number];
  every: number;
}

export interface RolloutRate {
  max_per_minute?: number;
  exponential?: ExponentialRamp;
  max_in_flight?: number;
}

export interface AbortRule {
  failure: AbortFailure;
  threshold_percent: number;
  min_executed: number;
  action: AbortAction;
}

export interface RetryPolicy {
  failed?: number;
  timed_out?: number;
  delay_seconds?: number;
  backoff_factor?: number;
}

/** What a target used of its retries: attempts started, and the retries it had of each failure type. */
export interface TargetRetries {
  attempt: number;
  failed_retries: number;
  timed_out_retries: number;
}

export interface MaintenanceWindow {
  cron: string;
  duration_minutes: number;
  timezone?: string;
}

export interface Schedule {
  start_time?: string;
  end_time?: string;
  end_behavior?: EndBehavior;
  windows?: MaintenanceWindow[];
}

/** What a job was created with; null where a control was not given. */
export interface RolloutControls {
  rollout: RolloutRate | null;
  abort: AbortRule[] | null;
  retry: RetryPolicy | null;
  schedule: Schedule | null;
}

export const NO_CONTROLS: RolloutControls = { rollout: null, abort: null, retry: null, schedule: null };

/** Whether the job has any control: such a job is sent only by the rollout rules. */
export const hasControls = (controls: RolloutControls): boolean =>
  controls.rollout !== null ||
  controls.abort !== null ||
  controls.retry !== null ||
  controls.schedule !== null;
