import type { Selectable } from 'kysely';
import {
  type ConnectionStatus,
  DEVICE_FIELDS,
  type Device,
  type DeviceField,
  type HealthStatus,
  type RestrictedStatus,
} from '../../model/device.js';
import {
  JOB_LIST_FIELDS,
  type Job,
  type JobDetail,
  type JobStatus,
  type JobTarget,
  type JobType,
  TARGET_FIELDS,
  type TargetSelector,
  type TargetStatus,
} from '../../model/job.js';
import type { RolloutControls, RolloutState } from '../../model/rollout.js';
import type { DevicesTable, JobsTable, JobTargetsTable } from './schema.js';

/** Rows as read from the database and the model objects the store hands out. */

export const parseJson = (text: string | null): unknown => (text === null ? null : JSON.parse(text));

/** A device field's column: `group` is stored as `group_path`. */
type DeviceColumn<F extends DeviceField> = F extends 'group' ? 'group_path' : F;

/** Every devices column a Device is made of (never the token hash). */
export const DEVICE_COLUMNS: readonly (DeviceColumn<DeviceField> & keyof DevicesTable)[] = DEVICE_FIELDS.map(
  (field) => (field === 'group' ? 'group_path' : field) as DeviceColumn<typeof field>,
);

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

/** The job fields of lists, which are also its columns. */
export const JOB_COLUMNS = JOB_LIST_FIELDS satisfies readonly (keyof JobsTable)[];

/** The columns of the rollout controls as submitted (`abort` is a keyword of SQLite). */
export const CONTROL_COLUMNS = ['rollout', 'abort_rules', 'retry', 'schedule'] as const;

export const JOB_DETAIL_COLUMNS = [
  ...JOB_COLUMNS,
  'payload',
  'timeout',
  'offline_timeout',
  'targets',
  ...CONTROL_COLUMNS,
] as const;

export type JobRow = Pick<Selectable<JobsTable>, (typeof JOB_COLUMNS)[number]>;
export type JobDetailRow = Pick<Selectable<JobsTable>, (typeof JOB_DETAIL_COLUMNS)[number]>;

export function jobFromRow(row: JobRow): Job {
  return {
    ...row,
    job_type: row.job_type as JobType,
    job_status: row.job_status as JobStatus,
    rollout_state: row.rollout_state as RolloutState,
  };
}

export type ControlRow = Pick<Selectable<JobsTable>, (typeof CONTROL_COLUMNS)[number]>;

export const controlsFromRow = (row: ControlRow): RolloutControls => ({
  rollout: parseJson(row.rollout) as RolloutControls['rollout'],
  abort: parseJson(row.abort_rules) as RolloutControls['abort'],
  retry: parseJson(row.retry) as RolloutControls['retry'],
  schedule: parseJson(row.schedule) as RolloutControls['schedule'],
});

export function jobDetailFromRow(row: JobDetailRow): JobDetail {
  const { payload, timeout, offline_timeout, targets, rollout, abort_rules, retry, schedule, ...job } = row;
  return {
    ...jobFromRow(job),
    ...controlsFromRow({ rollout, abort_rules, retry, schedule }),
    payload: parseJson(payload),
    timeout,
    offline_timeout,
    targets: JSON.parse(targets) as TargetSelector,
  };
}

export const TARGET_COLUMNS = TARGET_FIELDS satisfies readonly (keyof JobTargetsTable)[];

export type TargetRow = Pick<Selectable<JobTargetsTable>, (typeof TARGET_COLUMNS)[number]>;

export function targetFromRow(row: TargetRow): JobTarget {
  return { ...row, status: row.status as TargetStatus, response: parseJson(row.response) };
}
