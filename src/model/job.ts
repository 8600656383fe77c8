export const JOB_TYPES = [
  'send_message',
  'update_firmware',
  'reboot',
  'file_system',
  'data_service',
  'disconnect',
  'command',
] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const JOB_STATUSES = ['new', 'in_progress', 'complete', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TARGET_STATUSES = [
  'queued',
  'in_progress',
  'successful',
  'failed',
  'timed_out',
  'canceled',
] as const;
export type TargetStatus = (typeof TARGET_STATUSES)[number];

/** Statuses a device may report on its status topic. */
export const REPORTED_STATUSES = ['in_progress', 'successful', 'failed', 'canceled'] as const;
export type ReportedStatus = (typeof REPORTED_STATUSES)[number];

/** Timestamps are epoch milliseconds everywhere inside the service; formats turn them into ISO 8601. */
export type Millis = number;

/** The 13 fields of a job, in the order lists, XML and CSV show them. */
export const JOB_FIELDS = [
  'id',
  'customer_id',
  'username',
  'job_type',
  'job_status',
  'description',
  'job_submit_time',
  'job_completion_time',
  'target_count',
  'progress_success',
  'progress_failures',
  'progress_canceled',
  'progress_pending',
] as const;
export type JobField = (typeof JOB_FIELDS)[number];

export interface Job {
  id: number;
  customer_id: number;
  username: string;
  job_type: JobType;
  job_status: JobStatus;
  description: string | null;
  job_submit_time: Millis;
  job_completion_time: Millis | null;
  target_count: number;
  progress_success: number;
  progress_failures: number;
  progress_canceled: number;
  progress_pending: number;
}

/** What `targets` names when a job is created; the union of all of it, fixed at creation. */
export interface TargetSelector {
  devices?: string[];
  groups?: string[];
  tags?: string[];
  query?: string;
  all?: boolean;
}

/** The single-job view: the list fields plus what the job was created with. */
export interface JobDetail extends Job {
  payload: unknown;
  timeout: number;
  offline_timeout: number;
  targets: TargetSelector;
}

export const TARGET_FIELDS = [
  'job_id',
  'device_id',
  'status',
  'progress',
  'message',
  'response',
  'queued_time',
  'start_time',
  'end_time',
] as const;
export type TargetField = (typeof TARGET_FIELDS)[number];

export interface JobTarget {
  job_id: number;
  device_id: string;
  status: TargetStatus;
  progress: number;
  message: string | null;
  response: unknown;
  queued_time: Millis;
  start_time: Millis | null;
  end_time: Millis | null;
}

export const DEFAULT_TIMEOUT_SECONDS = 600;
export const DEFAULT_OFFLINE_TIMEOUT_SECONDS = 86_400;
export const MAX_PAYLOAD_BYTES = 64 * 1024;

export const isTerminalTarget = (status: TargetStatus): boolean =>
  status !== 'queued' && status !== 'in_progress';

export const isFinishedJob = (status: JobStatus): boolean =>
  status === 'complete' || status === 'failed' || status === 'canceled';

/** Which progress counter a target status counts in. */
export const progressBucket = (
  status: TargetStatus,
): 'progress_success' | 'progress_failures' | 'progress_canceled' | 'progress_pending' => {
  switch (status) {
    case 'successful':
      return 'progress_success';
    case 'failed':
    case 'timed_out':
      return 'progress_failures';
    case 'canceled':
      return 'progress_canceled';
    default:
      return 'progress_pending';
  }
};

/**
 * The status a job that was not cancelled by a user takes from its counts: `failed` when every
 * target failed or timed out, `complete` once all are terminal otherwise, else unchanged.
 */
export const settledJobStatus = (
  counts: Pick<Job, 'target_count' | 'progress_success' | 'progress_failures' | 'progress_pending'>,
): 'complete' | 'failed' | null => {
  if (counts.progress_pending > 0) return null;
  return counts.progress_failures === counts.target_count ? 'failed' : 'complete';
};

/** The message of a target whose device was offline when a request that does not wait for it came (SCI). */
export const DEVICE_NOT_CONNECTED = 'Device Not Connected';
