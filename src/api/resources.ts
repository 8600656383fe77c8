import { isoTime } from '../model/csv.js';
import {
  DEVICE_FIELDS,
  DEVICE_TIMESTAMP_FIELDS,
  type Device,
  type DeviceGroup,
  GROUP_FIELDS,
} from '../model/device.js';
import {
  JOB_FIELDS,
  JOB_LIST_FIELDS,
  type Job,
  type JobDetail,
  type JobTarget,
  TARGET_FIELDS,
} from '../model/job.js';
import type { Resource as QueryResource } from '../query/index.js';
import type { Order } from '../store/store.js';

/**
 * What the routes need to know about each listed resource: its fields in output order, which of
 * them are timestamps, what it may be ordered by, and its tie-break key for keyset paging.
 */
export interface ResourceInfo<T> {
  readonly name: QueryResource;
  /** The element name of one item in XML. */
  readonly element: string;
  /** The fields of JSON lists and XML, in order; a CSV `fields` may name any of them. */
  readonly fields: readonly string[];
  /** The columns of a CSV without `fields`. */
  readonly csvFields: readonly string[];
  readonly timestampFields: ReadonlySet<string>;
  readonly orderFields: readonly string[];
  readonly defaultOrder: Order;
  readonly key: (item: T) => string | number;
}

export const JOBS: ResourceInfo<Job> = {
  name: 'jobs',
  element: 'job',
  fields: JOB_LIST_FIELDS,
  csvFields: JOB_FIELDS,
  timestampFields: new Set(['job_submit_time', 'job_completion_time']),
  orderFields: JOB_LIST_FIELDS,
  defaultOrder: { field: 'id', direction: 'desc' },
  key: (job) => job.id,
};

export const DEVICES: ResourceInfo<Device> = {
  name: 'devices',
  element: 'device',
  fields: DEVICE_FIELDS,
  csvFields: DEVICE_FIELDS,
  timestampFields: new Set(DEVICE_TIMESTAMP_FIELDS),
  orderFields: DEVICE_FIELDS.filter((field) => field !== 'tags'),
  defaultOrder: { field: 'id', direction: 'asc' },
  key: (device) => device.id,
};

export const TARGETS: ResourceInfo<JobTarget> = {
  name: 'targets',
  element: 'target',
  fields: TARGET_FIELDS,
  csvFields: TARGET_FIELDS,
  timestampFields: new Set(['queued_time', 'start_time', 'end_time', 'next_attempt_time']),
  orderFields: TARGET_FIELDS.filter((field) => field !== 'response'),
  defaultOrder: { field: 'device_id', direction: 'asc' },
  key: (target) => target.device_id,
};

export const GROUPS: ResourceInfo<DeviceGroup> = {
  name: 'groups',
  element: 'group',
  fields: GROUP_FIELDS,
  csvFields: GROUP_FIELDS,
  timestampFields: new Set(),
  orderFields: GROUP_FIELDS,
  defaultOrder: { field: 'path', direction: 'asc' },
  key: (group) => group.path,
};

/** The single-job view adds what the job was created with. */
export const JOB_DETAIL_FIELDS = [
  ...JOB_LIST_FIELDS,
  'payload',
  'timeout',
  'offline_timeout',
  'targets',
  'rollout',
  'abort',
  'retry',
  'schedule',
] as const;

/** One item as JSON: its fields in order, timestamps in ISO 8601, missing values null. */
export function toJson<T extends object>(
  resource: Pick<ResourceInfo<T>, 'timestampFields'>,
  fields: readonly string[],
  item: T,
): Record<string, unknown> {
  const record = item as Record<string, unknown>;
  const json: Record<string, unknown> = {};
  for (const field of fields) {
    const value = record[field];
    json[field] = resource.timestampFields.has(field) ? isoTime(value as number | null) : (value ?? null);
  }
  return json;
}

/** A device in no group has no `group` value: `null` in JSON, like every field without a value. */
export const deviceJson = (device: Device): Record<string, unknown> =>
  toJson(DEVICES, DEVICE_FIELDS, { ...device, group: device.group === '' ? null : device.group });

export const jobJson = (job: Job): Record<string, unknown> => toJson(JOBS, JOB_LIST_FIELDS, job);

export const jobDetailJson = (job: JobDetail): Record<string, unknown> =>
  toJson(JOBS, JOB_DETAIL_FIELDS, job);
