import type { Selectable } from 'kysely';
import type { ConnectionStatus, Device, HealthStatus, RestrictedStatus } from '../../model/device.js';
import type {
  Job,
  JobDetail,
  JobStatus,
  JobTarget,
  JobType,
  TargetSelector,
  TargetStatus,
} from '../../model/job.js';
import type { DevicesTable, JobsTable, JobTargetsTable } from './schema.js';

/** Rows as read from the database and the model objects the store hands out. */

export const parseJson = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

/** Every devices column a Device is made of (never the token hash). */
export const DEVICE_COLUMNS = [
  'id',
  'customer_id',
  'vendor_id',
  'name',
  'type',
  'firmware_version',
  'serial_number',
  'mac',
  'ip',
  'public_ip',
  'description',
  'notes',
  'contact',
  'location',
  'carrier',
  'carrier2',
  'network',
  'network2',
  'group_path',
  'tags',
  'connection_status',
  'health_status',
  'restricted_status',
  'signal_percent',
  'signal_percent2',
  'signal_quality',
  'signal_quality2',
  'signal_strength',
  'signal_strength2',
  'last_connect',
  'last_disconnect',
  'last_update',
] as const satisfies readonly (keyof DevicesTable)[];

export type DeviceRow = Pick<Selectable<DevicesTable>, (typeof DEVICE_COLUMNS)[number]>;

export function deviceFromRow(row: DeviceRow): Device {
  const { group_path, tags, connection_status, health_status, restricted_status, ...rest } = row;
  return {
    ...rest,
    group: group_path,
    tags: JSON.parse(tags) as string[],
    connection_status: connection_status as ConnectionStatus,
    health_status: health_status as HealthStatus,
    restricted_status: restricted_status as RestrictedStatus,
  };
}

/** The 13 job fields, which are also its columns. */
export const JOB_COLUMNS = [
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
] as const satisfies readonly (keyof JobsTable)[];

export const JOB_DETAIL_COLUMNS = [
  ...JOB_COLUMNS,
  'payload',
  'timeout',
  'offline_timeout',
  'targets',
] as const;

export type JobRow = Pick<Selectable<JobsTable>, (typeof JOB_COLUMNS)[number]>;
export type JobDetailRow = Pick<Selectable<JobsTable>, (typeof JOB_DETAIL_COLUMNS)[number]>;

export function jobFromRow(row: JobRow): Job {
  return { ...row, job_type: row.job_type as JobType, job_status: row.job_status as JobStatus };
}

export function jobDetailFromRow(row: JobDetailRow): JobDetail {
  const { payload, timeout, offline_timeout, targets, ...job } = row;
  return {
    ...jobFromRow(job),
    payload: parseJson(payload),
    timeout,
    offline_timeout,
    targets: JSON.parse(targets) as TargetSelector,
  };
}

export const TARGET_COLUMNS = [
  'job_id',
  'device_id',
  'status',
  'progress',
  'message',
  'response',
  'queued_time',
  'start_time',
  'end_time',
] as const satisfies readonly (keyof JobTargetsTable)[];

export type TargetRow = Pick<Selectable<JobTargetsTable>, (typeof TARGET_COLUMNS)[number]>;

export function targetFromRow(row: TargetRow): JobTarget {
  return { ...row, status: row.status as TargetStatus, response: parseJson(row.response) };
}
