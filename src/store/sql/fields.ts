import { DEVICE_NUMBER_FIELDS, DEVICE_TEXT_FIELDS, DEVICE_TIMESTAMP_FIELDS } from '../../model/device.js';

/**
 * The store's one table of fields: for each field of each resource, the column that holds it,
 * whether it may be missing (NULL) and whether it is an integer. Query filters (filters.ts) and
 * keyset sorting (keyset.ts) both read it. Lists (device `tags`) and JSON values (target
 * `response`) have no column here: they neither sort nor compare as one column.
 */
export interface StoreField {
  column: string;
  nullable: boolean;
  integer: boolean;
}

export type StoreFields = ReadonlyMap<string, StoreField>;

const field = (name: string, nullable: boolean, integer: boolean, column = name): [string, StoreField] => [
  name,
  { column, nullable, integer },
];

const DEVICE_ENUM_FIELDS = ['connection_status', 'health_status', 'restricted_status'] as const;

export const DEVICE_STORE_FIELDS: StoreFields = new Map([
  field('id', false, false),
  field('customer_id', false, true),
  field('vendor_id', true, true),
  ...DEVICE_TEXT_FIELDS.map((name) => field(name, true, false)),
  field('group', false, false, 'group_path'),
  ...DEVICE_ENUM_FIELDS.map((name) => field(name, false, false)),
  ...DEVICE_NUMBER_FIELDS.map((name) => field(name, true, false)),
  ...DEVICE_TIMESTAMP_FIELDS.map((name) => field(name, true, true)),
]);

export const JOB_STORE_FIELDS: StoreFields = new Map([
  field('id', false, true),
  field('customer_id', false, true),
  field('username', false, false),
  field('job_type', false, false),
  field('job_status', false, false),
  field('description', true, false),
  field('job_submit_time', false, true),
  field('job_completion_time', true, true),
  field('target_count', false, true),
  field('progress_success', false, true),
  field('progress_failures', false, true),
  field('progress_canceled', false, true),
  field('progress_pending', false, true),
  field('rollout_state', false, false),
  field('abort_reason', true, false),
]);

export const TARGET_STORE_FIELDS: StoreFields = new Map([
  field('job_id', false, true),
  field('device_id', false, false),
  field('status', false, false),
  field('progress', false, true),
  field('message', true, false),
  field('queued_time', false, true),
  field('start_time', true, true),
  field('end_time', true, true),
  field('attempt', false, true),
  field('next_attempt_time', true, true),
]);

export const GROUP_STORE_FIELDS: StoreFields = new Map([
  field('path', false, false),
  field('name', false, false),
  field('parent', true, false),
  field('device_count', false, true),
]);

/** The monitors' fields (`persistent` neither sorts nor filters as its column: filters.ts). */
export const MONITOR_STORE_FIELDS: StoreFields = new Map([
  field('id', false, true),
  field('customer_id', false, true),
  field('type', false, false),
  field('url', false, false),
  field('method', false, false),
  field('format', false, false),
  field('batch_size', false, true),
  field('batch_duration', false, true),
  field('compression', false, false),
  field('description', true, false),
  field('status', false, false),
  field('last_sent', true, true),
  field('last_sent_uuid', true, false),
]);
