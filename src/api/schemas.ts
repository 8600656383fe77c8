import { type TSchema, Type } from 'typebox';
import {
  CONNECTION_STATUSES,
  DEVICE_NUMBER_FIELDS,
  DEVICE_TEXT_FIELDS,
  DEVICE_TIMESTAMP_FIELDS,
  HEALTH_STATUSES,
  RESTRICTED_STATUSES,
} from '../model/device.js';
import { EVENT_OPERATIONS, EVENT_TOPICS } from '../model/event.js';
import { JOB_STATUSES, JOB_TYPES, TARGET_STATUSES } from '../model/job.js';
import {
  MONITOR_COMPRESSIONS,
  MONITOR_FORMATS,
  MONITOR_METHODS,
  MONITOR_STATUSES,
} from '../model/monitor.js';
import {
  ABORT_ACTIONS,
  ABORT_FAILURES,
  END_BEHAVIORS,
  RAMP_COUNTS,
  ROLLOUT_STATES,
} from '../model/rollout.js';

/**
 * The TypeBox schemas of every route: Ajv validates requests with them (no coercion, no removal, so
 * a wrong type or an unknown field is 400) and the OpenAPI document is generated from them. What
 * values mean is checked by the job service. Responses are written by the routes as they are
 * (the serializer is plain JSON.stringify); their schemas here describe them.
 */

/** `["string", "null"]` rather than `anyOf`, so that Ajv says "must be string or null". */
const nullable = (type: 'string' | 'integer' | 'number', options: object = {}) =>
  Type.Unsafe<never>({ type: [type, 'null'], ...options });
const oneOf = (values: readonly string[], options: object = {}) =>
  Type.Unsafe<string>({ type: 'string', enum: [...values], ...options });
const strings = Type.Array(Type.String());
const timestamp = (description: string) => nullable('string', { format: 'date-time', description });

// ---- Request bodies ----

/** Every field a client may write on a device. */
const deviceFields = {
  vendor_id: nullable('integer'),
  ...Object.fromEntries(DEVICE_TEXT_FIELDS.map((field) => [field, nullable('string')])),
  group: Type.String({ description: 'group path, e.g. /NorthWest/Seattle' }),
  tags: strings,
  health_status: oneOf(HEALTH_STATUSES),
  restricted_status: oneOf(RESTRICTED_STATUSES),
  ...Object.fromEntries(DEVICE_NUMBER_FIELDS.map((field) => [field, nullable('number')])),
};

const optionalDeviceFields = Object.fromEntries(
  Object.entries(deviceFields).map(([field, schema]) => [field, Type.Optional(schema)]),
);

const deviceId = Type.String({ description: 'four groups of 8 hex digits' });

const deviceCreate = Type.Object(
  {
    id: deviceId,
    ...optionalDeviceFields,
    device_token: Type.Optional(Type.String({ description: 'MQTT password; generated when absent' })),
  },
  { additionalProperties: false },
);

/** One device or an array of them; the route wraps a single one into an array before validation. */
export const deviceCreateBody = Type.Array(deviceCreate, {
  description: 'one device, or an array of up to 10,000 (a single object is taken as an array of one)',
});

/** `id` may be repeated as it is in the path (a device read, edited and sent back), never changed. */
export const deviceUpdateBody = Type.Object(
  { id: Type.Optional(deviceId), ...optionalDeviceFields },
  { additionalProperties: false },
);

export const deviceTokenBody = Type.Object(
  { device_token: Type.Optional(Type.String({ description: 'the new token; generated when absent' })) },
  { additionalProperties: false },
);

const closed = { additionalProperties: false } as const;
const perMinute = (description: string) => Type.Integer({ minimum: 1, maximum: 100_000, description });

/** CONTRACT §9: the rollout controls of a create body (ranges here; what JSON Schema cannot say, in src/jobs/rollout/). */
const rolloutControls = {
  rollout: Type.Object(
    {
      max_per_minute: Type.Optional(perMinute('requests started per minute, at most')),
      exponential: Type.Optional(
        Type.Object(
          {
            base_per_minute: perMinute('the rate at the start'),
            increment_factor: Type.Number({ minimum: 1.1, maximum: 5, description: 'the rate grows by it' }),
            after: oneOf(RAMP_COUNTS, { description: 'what `every` counts: targets sent or succeeded' }),
            every: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'targets per step up' }),
          },
          { ...closed, description: 'a rate that grows, never above max_per_minute' },
        ),
      ),
      max_in_flight: Type.Optional(perMinute('targets in progress at once, at most')),
    },
    closed,
  ),
  abort: Type.Array(
    Type.Object(
      {
        failure: oneOf(ABORT_FAILURES),
        threshold_percent: Type.Number({ minimum: 0, maximum: 100, description: 'at most 2 decimals' }),
        min_executed: Type.Integer({ minimum: 1, maximum: 1_000_000, description: 'ended targets first' }),
        action: oneOf(ABORT_ACTIONS),
      },
      closed,
    ),
    { maxItems: 16, description: 'rules that stop the rollout when too many targets fail' },
  ),
  retry: Type.Object(
    {
      failed: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
      timed_out: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
      delay_seconds: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400, description: 'default 0' })),
      backoff_factor: Type.Optional(Type.Number({ minimum: 1, maximum: 10, description: 'default 1' })),
    },
    { ...closed, description: 'attempt n waits delay × factor^(n-2) seconds' },
  ),
  schedule: Type.Object(
    {
      start_time: Type.Optional(Type.String({ format: 'date-time', description: 'in the future' })),
      end_time: Type.Optional(Type.String({ format: 'date-time', description: 'after start_time' })),
      end_behavior: Type.Optional(oneOf(END_BEHAVIORS, { description: 'default stop' })),
      windows: Type.Optional(
        Type.Array(
          Type.Object(
            {
              cron: Type.String({ description: 'when a window opens: 5 fields, e.g. 0 2 * * *' }),
              duration_minutes: Type.Integer({ minimum: 1, maximum: 1440 }),
              timezone: Type.Optional(Type.String({ description: 'IANA time zone, default UTC' })),
            },
            closed,
          ),
          { maxItems: 32 },
        ),
      ),
    },
    closed,
  ),
};

export const jobCreateBody = Type.Object(
  {
    job_type: oneOf(JOB_TYPES),
    description: Type.Optional(nullable('string')),
    targets: Type.Object(
      {
        devices: Type.Optional(strings),
        groups: Type.Optional(strings),
        tags: Type.Optional(strings),
        query: Type.Optional(Type.String({ description: 'devices matching this v1 query' })),
        all: Type.Optional(Type.Boolean()),
      },
      { additionalProperties: false, description: 'the union of these selects the devices' },
    ),
    payload: Type.Optional(Type.Unknown({ description: 'any JSON value, sent to the devices' })),
    timeout: Type.Optional(Type.Integer({ minimum: 1, description: 'seconds a device has to finish' })),
    offline_timeout: Type.Optional(
      Type.Integer({ minimum: 1, description: 'seconds to wait for an offline device' }),
    ),
    rollout: Type.Optional(rolloutControls.rollout),
    abort: Type.Optional(rolloutControls.abort),
    retry: Type.Optional(rolloutControls.retry),
    schedule: Type.Optional(rolloutControls.schedule),
  },
  { additionalProperties: false },
);

/** What a client sets on a monitor (§10); a create needs `topics` and `url`. */
const monitorFields = {
  type: Type.Literal('http', { description: 'http (the only transport)' }),
  topics: Type.Array(oneOf(EVENT_TOPICS), { minItems: 1, description: 'the kinds of change to receive' }),
  url: Type.String({ description: 'http:// or https:// URL the batches are sent to' }),
  method: oneOf(MONITOR_METHODS, { description: 'POST (default) or PUT' }),
  format: oneOf(MONITOR_FORMATS, { description: 'json (default) or xml' }),
  auth_token: nullable('string', { description: "'user:password', sent as HTTP Basic; never shown back" }),
  headers: Type.Array(Type.String(), { description: "extra request headers, 'Name: value'" }),
  batch_size: Type.Integer({ minimum: 1, maximum: 1000, description: 'events per batch (default 100)' }),
  batch_duration: Type.Integer({
    minimum: 1,
    maximum: 3600,
    description: 'seconds the first event of a batch waits at most (default 10)',
  }),
  compression: oneOf(MONITOR_COMPRESSIONS, { description: 'none (default) or gzip' }),
  persistent: Type.Boolean({
    description: 'keep events while the receiver is down, up to 7 days (default true)',
  }),
  secret: nullable('string', { description: 'signs each body (X-Fleetjobs-Signature); never shown back' }),
  description: nullable('string'),
};

const optionalMonitorFields = Object.fromEntries(
  Object.entries(monitorFields).map(([field, schema]) => [field, Type.Optional(schema)]),
);

export const monitorCreateBody = Type.Object(
  { ...optionalMonitorFields, topics: monitorFields.topics, url: monitorFields.url },
  { additionalProperties: false },
);

export const monitorUpdateBody = Type.Object(
  {
    ...optionalMonitorFields,
    status: Type.Optional(
      oneOf(['active', 'inactive'], { description: 'active resumes a disabled monitor' }),
    ),
  },
  { additionalProperties: false },
);

// ---- Path and query parameters (always text; the routes parse them and say what is wrong) ----

export const jobIdParams = Type.Object({ id: Type.String({ description: 'a job id' }) });
const jobIdList = Type.String({ description: 'a job id, or several separated by commas: 12,13,14' });
export const jobIdsParams = Type.Object({ ids: jobIdList });
/** The by-id delete shares its path with the one-job GET, so its parameter has the same name. */
export const jobIdListParams = Type.Object({ id: jobIdList });
export const deviceIdParams = Type.Object({ id: deviceId });
export const monitorIdParams = Type.Object({ id: Type.String({ description: 'a monitor id' }) });

const parameter = (description: string) => Type.Optional(Type.String({ description }));
const queryParameter = parameter('v1 query language; empty or absent matches everything');
const orderbyParameter = parameter("'<field>' or '<field> asc|desc' (desc by default)");

export const pageQuery = Type.Object({
  query: queryParameter,
  orderby: orderbyParameter,
  size: parameter('page size, 1-1000 (default and maximum 1000)'),
  cursor: parameter('from the previous page, to get the next one'),
});
export const csvQuery = Type.Object({
  query: queryParameter,
  orderby: orderbyParameter,
  fields: parameter('comma-separated fields (columns), in the order wanted'),
});
const forceParameter = parameter('true also cancels targets a device is working on');
export const forceQuery = Type.Object({ force: forceParameter });
export const historyQuery = Type.Object({
  start_time: parameter('ISO 8601; events at or after it'),
  end_time: parameter('ISO 8601; events before it'),
  size: parameter('page size, 1-1000 (default and maximum 1000)'),
  cursor: parameter('from the previous page, to get the next one'),
});
export const eventStreamQuery = Type.Object({
  topics: parameter('comma-separated: jobs, job_targets, devices (default all)'),
  job_id: parameter("only this job's events (jobs and job_targets)"),
});
export const byQueryQuery = Type.Object({
  query: parameter('the jobs to act on (required), in the v1 query language'),
  force: forceParameter,
});
export const deleteByQueryQuery = Type.Object({
  query: parameter('the finished jobs to delete (required), in the v1 query language'),
});

// ---- Responses ----

export const errorBody = Type.Object(
  { error_status: Type.Integer(), error_message: Type.String() },
  { description: 'what went wrong' },
);

const jobProperties = {
  id: Type.Integer(),
  customer_id: Type.Integer(),
  username: Type.String(),
  job_type: oneOf(JOB_TYPES),
  job_status: oneOf(JOB_STATUSES),
  description: nullable('string'),
  job_submit_time: Type.String({ format: 'date-time' }),
  job_completion_time: timestamp('when the job finished'),
  target_count: Type.Integer(),
  progress_success: Type.Integer(),
  progress_failures: Type.Integer(),
  progress_canceled: Type.Integer(),
  progress_pending: Type.Integer(),
  rollout_state: oneOf(ROLLOUT_STATES),
  abort_reason: nullable('string', { description: 'why an abort rule stopped the rollout' }),
};
export const job = Type.Object(jobProperties);
const orNull = (schema: TSchema) => Type.Union([schema, Type.Null()]);
export const jobDetail = Type.Object({
  ...jobProperties,
  payload: Type.Unknown(),
  timeout: Type.Integer(),
  offline_timeout: Type.Integer(),
  targets: jobCreateBody.properties.targets,
  rollout: orNull(rolloutControls.rollout),
  abort: orNull(rolloutControls.abort),
  retry: orNull(rolloutControls.retry),
  schedule: orNull(rolloutControls.schedule),
});

export const target = Type.Object({
  job_id: Type.Integer(),
  device_id: Type.String(),
  status: oneOf(TARGET_STATUSES),
  progress: Type.Integer(),
  message: nullable('string'),
  response: Type.Unknown({ description: "the device's answer" }),
  queued_time: Type.String({ format: 'date-time' }),
  start_time: timestamp('when the request reached the device'),
  end_time: timestamp('when the device finished'),
  attempt: Type.Integer({ description: 'attempts started' }),
  next_attempt_time: timestamp('when the next attempt is due, while waiting for a retry'),
});

export const device = Type.Object({
  id: Type.String(),
  customer_id: Type.Integer(),
  vendor_id: nullable('integer'),
  ...Object.fromEntries(DEVICE_TEXT_FIELDS.map((field) => [field, nullable('string')])),
  group: nullable('string'),
  tags: strings,
  connection_status: oneOf(CONNECTION_STATUSES),
  health_status: oneOf(HEALTH_STATUSES),
  restricted_status: oneOf(RESTRICTED_STATUSES),
  ...Object.fromEntries(DEVICE_NUMBER_FIELDS.map((field) => [field, nullable('number')])),
  ...Object.fromEntries(DEVICE_TIMESTAMP_FIELDS.map((field) => [field, timestamp(field)])),
});

export const group = Type.Object({
  path: Type.String({ description: 'e.g. /NorthWest/Seattle' }),
  name: Type.String({ description: 'the last segment of the path' }),
  parent: nullable('string', { description: 'the path one level up; null at the top' }),
  device_count: Type.Integer({ description: 'devices in the group and its subgroups' }),
});

/** `GET /ws/v1`: the v1 APIs of this service. */
export const apiIndex = Type.Object({
  count: Type.Integer(),
  list: Type.Array(Type.Object({ name: Type.String(), uri: Type.String() })),
});

export const createdDevices = Type.Object({
  count: Type.Integer(),
  size: Type.Integer(),
  list: Type.Array(Type.Object({ ...device.properties, device_token: Type.String() })),
});

export const monitor = Type.Object({
  id: Type.Integer(),
  customer_id: Type.Integer(),
  ...Object.fromEntries(
    Object.entries(monitorFields).filter(([field]) => field !== 'auth_token' && field !== 'secret'),
  ),
  headers: Type.Array(Type.String(), {
    description: 'the names of the extra headers (values are not shown)',
  }),
  status: oneOf(MONITOR_STATUSES),
  last_sent: timestamp('when a batch was last delivered'),
  last_sent_uuid: nullable('string', { description: 'the last event of that batch' }),
});

/** An event as monitors, the history and the live stream show it. */
export const message = Type.Object(
  {
    topic: Type.String({
      description: '<customer_id>/jobs/<job id>, …/job_targets/<job id>/<device id>, …/devices/<id>',
    }),
    group: Type.String(),
    operation: oneOf(EVENT_OPERATIONS),
    timestamp: Type.String({ format: 'date-time' }),
    uuid: Type.String(),
    jobs: Type.Optional(job),
    job_targets: Type.Optional(target),
    devices: Type.Optional(device),
  },
  { description: 'one change: the object right after it' },
);

export const eventStream = {
  description: 'Server-sent events: event <topic>, id <uuid>, data <Msg>; a comment every 15 s',
  content: { 'text/event-stream': { schema: Type.String() } },
};

/** The list envelope of §3: `cursor` and `next_uri` only when more items follow. */
export const page = (item: TSchema) =>
  Type.Object({
    count: Type.Integer(),
    size: Type.Integer(),
    cursor: Type.Optional(Type.String()),
    next_uri: Type.Optional(Type.String()),
    list: Type.Array(item),
  });

/** A by-id cancel or delete: what changed, and an entry per id left alone. */
export const byIdResults = (item: TSchema) =>
  Type.Object({
    count: Type.Integer(),
    list: Type.Array(item),
    errors: Type.Optional(
      Type.Array(
        Type.Object({
          id: Type.Union([Type.Integer(), Type.String()]),
          error_status: Type.Integer(),
          error_message: Type.String(),
        }),
      ),
    ),
  });

/** A by-query change of a job's targets. */
export const targetsChanged = Type.Object({
  count: Type.Integer({ description: 'targets changed' }),
  skipped: Type.Integer({ description: 'matching targets left alone' }),
});

export const byQueryResult = Type.Object({
  count: Type.Integer({ description: 'jobs changed' }),
  skipped: Type.Integer({ description: 'matching jobs left alone' }),
});

export const summary = (uris: Record<string, string>) =>
  Type.Object(Object.fromEntries(Object.keys(uris).map((key) => [key, Type.String()])));

export const deviceToken = Type.Object({ id: Type.String(), device_token: Type.String() });

export const csv = {
  description: 'CSV, with a header line',
  content: { 'text/csv': { schema: Type.String() } },
};

/** Every error status a route may answer, with the §3 body. */
const ERRORS = {
  '4XX': errorBody,
  '5XX': errorBody,
};

/** A route's OpenAPI description: unique operationId, tag, summary, and its answers with the error body. */
export function describeRoute(
  operationId: string,
  tag: 'jobs' | 'devices' | 'groups' | 'monitors' | 'sci' | 'service',
  summary: string,
  schema: { response?: Record<string, unknown>; [part: string]: unknown } = {},
) {
  return { operationId, tags: [tag], summary, ...schema, response: { ...schema.response, ...ERRORS } };
}
