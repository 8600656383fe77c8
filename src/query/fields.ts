import {
  CONNECTION_STATUSES,
  DEVICE_NUMBER_FIELDS,
  DEVICE_TEXT_FIELDS,
  DEVICE_TIMESTAMP_FIELDS,
  HEALTH_STATUSES,
  RESTRICTED_STATUSES,
} from '../model/device.js';
import { JOB_STATUSES, JOB_TYPES, TARGET_STATUSES } from '../model/job.js';
import {
  MONITOR_COMPRESSIONS,
  MONITOR_FORMATS,
  MONITOR_METHODS,
  MONITOR_STATUSES,
  MONITOR_TYPES,
} from '../model/monitor.js';
import { ROLLOUT_STATES } from '../model/rollout.js';
import type { FieldKind, FieldScope } from './ast.js';

/** The resources a query filters. */
export type Resource = 'jobs' | 'devices' | 'targets' | 'groups' | 'monitors';

export interface FieldInfo {
  /** The stored field name (no `device.` prefix): the key of the model object. */
  readonly name: string;
  readonly scope: FieldScope;
  readonly kind: FieldKind;
  /** The values of an enum field, lower-case. */
  readonly values?: readonly string[];
}

type FieldSpec = readonly [name: string, kind: FieldKind, values?: readonly string[]];

const DEVICE_FIELD_SPECS: readonly FieldSpec[] = [
  ['id', 'text'],
  ['customer_id', 'number'],
  ['vendor_id', 'number'],
  ...DEVICE_TEXT_FIELDS.map((name): FieldSpec => [name, 'text']),
  ['group', 'group'],
  ['tags', 'tags'],
  ['connection_status', 'enum', CONNECTION_STATUSES],
  ['health_status', 'enum', HEALTH_STATUSES],
  ['restricted_status', 'enum', RESTRICTED_STATUSES],
  ...DEVICE_NUMBER_FIELDS.map((name): FieldSpec => [name, 'number']),
  ...DEVICE_TIMESTAMP_FIELDS.map((name): FieldSpec => [name, 'timestamp']),
];

const JOB_FIELD_SPECS: readonly FieldSpec[] = [
  ['id', 'number'],
  ['customer_id', 'number'],
  ['username', 'text'],
  ['job_type', 'enum', JOB_TYPES],
  ['job_status', 'enum', JOB_STATUSES],
  ['description', 'text'],
  ['job_submit_time', 'timestamp'],
  ['job_completion_time', 'timestamp'],
  ['target_count', 'number'],
  ['progress_success', 'number'],
  ['progress_failures', 'number'],
  ['progress_canceled', 'number'],
  ['progress_pending', 'number'],
  ['rollout_state', 'enum', ROLLOUT_STATES],
  ['abort_reason', 'text'],
];

/** Target fields a targets query may name besides the device fields (`device_id` survives a deleted device). */
const TARGET_FIELD_SPECS: readonly FieldSpec[] = [
  ['status', 'enum', TARGET_STATUSES],
  ['device_id', 'text'],
  ['progress', 'number'],
  ['message', 'text'],
  ['queued_time', 'timestamp'],
  ['start_time', 'timestamp'],
  ['end_time', 'timestamp'],
  ['attempt', 'number'],
  ['next_attempt_time', 'timestamp'],
];

/** The groups of the inventory (`GET /ws/v1/groups/inventory`): no device fields. */
const GROUP_FIELD_SPECS: readonly FieldSpec[] = [
  ['path', 'text'],
  ['name', 'text'],
  ['parent', 'text'],
  ['device_count', 'number'],
];

/**
 * The monitors of `GET /ws/v1/monitors/inventory`: their settings and delivery status, no device
 * fields. Enum values are lower-case as every enum's are (`method = 'post'`), `persistent` is
 * `'true'` or `'false'`; `topics` and `headers` are lists, not filtered.
 */
const MONITOR_FIELD_SPECS: readonly FieldSpec[] = [
  ['id', 'number'],
  ['type', 'enum', MONITOR_TYPES],
  ['url', 'text'],
  ['method', 'enum', MONITOR_METHODS.map((method) => method.toLowerCase())],
  ['format', 'enum', MONITOR_FORMATS],
  ['batch_size', 'number'],
  ['batch_duration', 'number'],
  ['compression', 'enum', MONITOR_COMPRESSIONS],
  ['persistent', 'enum', ['true', 'false']],
  ['description', 'text'],
  ['status', 'enum', MONITOR_STATUSES],
  ['last_sent', 'timestamp'],
  ['last_sent_uuid', 'text'],
];

const info = ([name, kind, values]: FieldSpec, scope: FieldScope): FieldInfo =>
  values === undefined ? { name, scope, kind } : { name, scope, kind, values };

/**
 * Builds a registry: the bare names of `own` fields, then the device fields that `own` does not
 * shadow, then `device.<field>` for every device field.
 */
const registry = (own: readonly FieldSpec[], ownScope: FieldScope): ReadonlyMap<string, FieldInfo> => {
  const fields = new Map<string, FieldInfo>();
  for (const spec of own) fields.set(spec[0], info(spec, ownScope));
  for (const spec of DEVICE_FIELD_SPECS) if (!fields.has(spec[0])) fields.set(spec[0], info(spec, 'device'));
  for (const spec of DEVICE_FIELD_SPECS) fields.set(`device.${spec[0]}`, info(spec, 'device'));
  return fields;
};

/** A registry of `specs` alone, for a resource without device fields. */
const ownFields = (specs: readonly FieldSpec[], scope: FieldScope): ReadonlyMap<string, FieldInfo> =>
  new Map(specs.map((spec) => [spec[0], info(spec, scope)]));

const REGISTRIES: Readonly<Record<Resource, ReadonlyMap<string, FieldInfo>>> = {
  devices: registry([], 'device'),
  targets: registry(TARGET_FIELD_SPECS, 'target'),
  jobs: registry(JOB_FIELD_SPECS, 'job'),
  groups: ownFields(GROUP_FIELD_SPECS, 'group'),
  monitors: ownFields(MONITOR_FIELD_SPECS, 'monitor'),
};

/** The fields a query on `resource` may name: lower-case query name → field. */
export const queryFields = (resource: Resource): ReadonlyMap<string, FieldInfo> => REGISTRIES[resource];

const SHADOWED_DEVICE_FIELDS: ReadonlySet<string> = new Set(
  JOB_FIELD_SPECS.map(([name]) => name).filter((name) =>
    DEVICE_FIELD_SPECS.some(([device]) => device === name),
  ),
);

/**
 * The name that refers to `field` in a query of any resource: the bare name, or `device.<name>`
 * for a device field whose bare name a job field takes (`id`, `customer_id`, `description`).
 */
export const fieldQueryName = (field: Pick<FieldInfo, 'name' | 'scope'>): string =>
  field.scope === 'device' && SHADOWED_DEVICE_FIELDS.has(field.name) ? `device.${field.name}` : field.name;

const FIELD_LISTS: Readonly<Record<Resource, string>> = {
  devices: listFields('devices'),
  targets: listFields('targets'),
  jobs: listFields('jobs'),
  groups: listFields('groups'),
  monitors: listFields('monitors'),
};

/** The names an error message lists: every field, with the `device.` aliases summed up in one entry. */
function listFields(resource: Resource): string {
  const names = [...REGISTRIES[resource].keys()].filter((name) => !name.startsWith('device.'));
  const withDevices = REGISTRIES[resource].size > names.length;
  return withDevices ? `${names.join(', ')}, or device.<device field>` : names.join(', ');
}

/** The valid field names of `resource`, as an error message lists them. */
export const describeFields = (resource: Resource): string => FIELD_LISTS[resource];
