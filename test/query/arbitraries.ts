/**
 * fast-check arbitraries for the query language, shared by the parser's property tests and the SQL
 * compiler's differential test: well-typed random queries (canonical ASTs, as the parser builds
 * them, with every offset 0) and random devices, jobs and targets whose values often meet the
 * queries' values (case variants, non-ASCII text, LIKE wildcards, missing values).
 */
import fc from 'fast-check';
import {
  CONNECTION_STATUSES,
  DEVICE_NUMBER_FIELDS,
  DEVICE_TEXT_FIELDS,
  DEVICE_TIMESTAMP_FIELDS,
  type Device,
  HEALTH_STATUSES,
  RESTRICTED_STATUSES,
} from '../../src/model/device.js';
import { JOB_STATUSES, JOB_TYPES, type Job, type JobTarget, TARGET_STATUSES } from '../../src/model/job.js';
import { ROLLOUT_STATES } from '../../src/model/rollout.js';
import type { ComparisonOperator, FieldRef, QueryNode, Value } from '../../src/query/ast.js';
import { type FieldInfo, queryFields, type Resource } from '../../src/query/fields.js';
import { canonicalGroupValue, OPERATORS_BY_KIND, parseIsoTimestamp } from '../../src/query/parser.js';

/** The "now" that generated timestamps cluster around; evaluate relative times against it. */
export const ARB_NOW = Date.UTC(2026, 10, 28, 17, 40, 0, 0);

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Characters that make text comparison interesting: case, non-ASCII letters whose case does not fold, astral code points, wildcards, quotes. */
const CHARACTERS = [
  ...'aAbBzZ09 -./',
  'ß',
  'é',
  'É',
  'İ',
  'ı',
  'Ä',
  'ä',
  '\u00ff',
  '\uE000',
  '\uFF5A',
  '\uFFFD',
  '😀',
  '𝒜',
  '%',
  '_',
  '\\',
  "'",
  '"',
];

const TEXT_SAMPLES = [
  '',
  'a',
  'A',
  'abc',
  'ABC',
  'Abc',
  'ab',
  'b',
  'Straße',
  'STRASSE',
  'é',
  'É',
  '😀',
  '\uFFFD',
  "it's",
  'a%c',
  'a_c',
  'x\\y',
];

/** A text: often one of a few shared samples (so conditions match), else random from CHARACTERS. */
export const arbText = (): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...TEXT_SAMPLES) },
    { weight: 2, arbitrary: fc.string({ unit: fc.constantFrom(...CHARACTERS), maxLength: 6 }) },
  );

/** Device ids from a small space, so `id = '…'` conditions meet devices. */
export const arbDeviceId = (): fc.Arbitrary<string> =>
  fc
    .integer({ min: 0, max: 63 })
    .map((n) => `00000000-00000000-0004F3FF-FF0123${n.toString(16).toUpperCase().padStart(2, '0')}`);

const STORED_GROUPS = [
  '',
  '/test',
  '/testing',
  '/Test/leaf',
  '/test/sub/leaf',
  '/a/leaf',
  '/a/myleaf',
  '/leaf',
  '/NorthWest',
  '/NorthWestern',
  '/NorthWest/Seattle',
  '/Ünïcode/ß',
  '/a%b/c_d',
];
const QUERIED_GROUPS = [
  ...STORED_GROUPS,
  'test',
  'test/',
  '/TEST/',
  'leaf',
  '/leaf/',
  'LEAF/',
  '/',
  'northwest',
  'NorthWest/',
  'a/l',
  'ünïcode',
  '%',
  '_',
  'a%b',
];
const TAGS = ['sensor', 'Sensor', 'sens', 'important', 'ns', 'x', 'X', 'ünï', 'a%', 'a_b', "it's", 'or'];
const NUMBERS = [0, 5, 19, 20, 21, 2.5, -85, -0.5, 31, 100, 4_261_412_866];
const TIME_STEPS = [-31 * DAY, -30 * DAY, -2 * HOUR, -5 * MINUTE, -10 * SECOND, 0, DAY, 2 * DAY];

const arbNumber = (): fc.Arbitrary<number> =>
  fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...NUMBERS) }, fc.integer({ min: -200, max: 200 }));

const arbTime = (): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...TIME_STEPS).map((step) => ARB_NOW + step) },
    fc.integer({ min: -40 * DAY, max: 3 * DAY }).map((step) => ARB_NOW + step),
  );

const nullable = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | null> =>
  fc.option(arbitrary, { nil: null, freq: 4 });

/** A random device of account `customerId`. */
export const arbDevice = (customerId = 1): fc.Arbitrary<Device> => {
  const text = Object.fromEntries(DEVICE_TEXT_FIELDS.map((name) => [name, nullable(arbText())]));
  const numbers = Object.fromEntries(DEVICE_NUMBER_FIELDS.map((name) => [name, nullable(arbNumber())]));
  const times = Object.fromEntries(DEVICE_TIMESTAMP_FIELDS.map((name) => [name, nullable(arbTime())]));
  return fc.record({
    ...(text as Record<(typeof DEVICE_TEXT_FIELDS)[number], fc.Arbitrary<string | null>>),
    ...(numbers as Record<(typeof DEVICE_NUMBER_FIELDS)[number], fc.Arbitrary<number | null>>),
    ...(times as Record<(typeof DEVICE_TIMESTAMP_FIELDS)[number], fc.Arbitrary<number | null>>),
    id: arbDeviceId(),
    customer_id: fc.constant(customerId),
    vendor_id: nullable(arbNumber().map(Math.trunc)),
    group: fc.constantFrom(...STORED_GROUPS),
    tags: fc.uniqueArray(fc.constantFrom(...TAGS), { maxLength: 3 }),
    connection_status: fc.constantFrom(...CONNECTION_STATUSES),
    health_status: fc.constantFrom(...HEALTH_STATUSES),
    restricted_status: fc.constantFrom(...RESTRICTED_STATUSES),
  });
};

const arbCount = (): fc.Arbitrary<number> => fc.integer({ min: 0, max: 25 });

/** A random job of account `customerId` (its counts need not agree with any targets). */
export const arbJob = (customerId = 1): fc.Arbitrary<Job> =>
  fc.record({
    id: fc.integer({ min: 1, max: 25 }),
    customer_id: fc.constant(customerId),
    username: fc.oneof(fc.constantFrom('alice', 'Alice', 'bob', 'user7', 'üser'), arbText()),
    job_type: fc.constantFrom(...JOB_TYPES),
    job_status: fc.constantFrom(...JOB_STATUSES),
    description: nullable(arbText()),
    job_submit_time: arbTime(),
    job_completion_time: nullable(arbTime()),
    target_count: arbCount(),
    progress_success: arbCount(),
    progress_failures: arbCount(),
    progress_canceled: arbCount(),
    progress_pending: arbCount(),
    rollout_state: fc.constantFrom(...ROLLOUT_STATES),
    abort_reason: nullable(arbText()),
  });

/** A random target of job `jobId` on device `deviceId`. */
export const arbJobTarget = (jobId: number, deviceId: string): fc.Arbitrary<JobTarget> =>
  fc.record({
    job_id: fc.constant(jobId),
    device_id: fc.constant(deviceId),
    status: fc.constantFrom(...TARGET_STATUSES),
    progress: fc.integer({ min: 0, max: 100 }),
    message: nullable(arbText()),
    response: fc.constant(null),
    queued_time: arbTime(),
    start_time: nullable(arbTime()),
    end_time: nullable(arbTime()),
    attempt: fc.integer({ min: 0, max: 3 }),
    next_attempt_time: nullable(arbTime()),
  });

const RELATIVE_TIMES = ['-10s', '-5m', '-2h', '-30d', '+1d', '-1d', '+0s', '-90m'];
const ISO_TIMES = [
  '2026-11-28',
  '2026-11-28T17:40:00Z',
  '2026-11-28T17:39:50.000Z',
  '2026-10-29T17:40:00+00:00',
  '2026-11-28T18:40:00+01:00',
];

const arbValue = (info: FieldInfo, operator: ComparisonOperator): fc.Arbitrary<Value> => {
  const offset = 0;
  const text = (arbitrary: fc.Arbitrary<string>): fc.Arbitrary<Value> =>
    arbitrary.map((value) => ({ type: 'text', value, offset }));
  let value: fc.Arbitrary<Value>;
  switch (info.kind) {
    case 'number':
      value = fc.oneof(
        arbNumber().map((n): Value => ({ type: 'number', value: n, raw: String(n), offset })),
        fc
          .constantFrom(['0x1F', 31], ['0xFE000002', 4_261_412_866], ['-0x10', -16], ['+5', 5], ['20.0', 20])
          .map(([raw, n]): Value => ({ type: 'number', value: n as number, raw: raw as string, offset })),
      );
      break;
    case 'timestamp':
      value = fc.oneof(
        fc.constantFrom(...RELATIVE_TIMES).map((raw): Value => {
          const amount =
            Number(raw.slice(1, -1)) * { s: SECOND, m: MINUTE, h: HOUR, d: DAY }[raw.slice(-1) as 's'];
          return { type: 'relative_time', milliseconds: raw.startsWith('-') ? -amount : amount, raw, offset };
        }),
        fc
          .oneof(
            fc.constantFrom(...ISO_TIMES),
            arbTime().map((t) => new Date(t).toISOString()),
          )
          .map((raw): Value => ({ type: 'timestamp', value: parseIsoTimestamp(raw) ?? 0, raw, offset })),
      );
      break;
    case 'enum':
      value = text(fc.constantFrom(...(info.values ?? [])));
      break;
    case 'group':
      value = fc.constantFrom(...QUERIED_GROUPS).map((raw): Value => {
        const path = canonicalGroupValue(operator, raw);
        return path === null ? { type: 'empty', offset } : { type: 'text', value: path, offset };
      });
      break;
    case 'tags':
      value = text(fc.oneof(fc.constantFrom(...TAGS, 'SENSOR', 'SENS', 'OR', ''), arbText()));
      break;
    case 'text':
      value = text(
        info.name === 'id'
          ? fc.oneof(
              arbDeviceId(),
              arbDeviceId().map((id) => id.toLowerCase()),
              arbText(),
            )
          : arbText(),
      );
      break;
  }
  return operator === '=' || operator === '<>'
    ? fc.oneof({ weight: 5, arbitrary: value }, fc.constant<Value>({ type: 'empty', offset }))
    : value;
};

/** Every distinct field of a resource (the `device.` aliases name the same fields). */
const distinctFields = (resource: Resource): FieldInfo[] => {
  const seen = new Map<string, FieldInfo>();
  for (const info of queryFields(resource).values()) seen.set(`${info.scope}.${info.name}`, info);
  return [...seen.values()];
};

/** A random well-typed condition on a field of `resource`. */
export const arbCondition = (resource: Resource): fc.Arbitrary<QueryNode> =>
  fc.constantFrom(...distinctFields(resource)).chain((info) =>
    fc.constantFrom(...OPERATORS_BY_KIND[info.kind]).chain((operator) =>
      arbValue(info, operator).map((value): QueryNode => {
        const field: FieldRef = { name: info.name, scope: info.scope, kind: info.kind, offset: 0 };
        return { type: 'condition', field, operator, value, offset: 0 };
      }),
    ),
  );

/** A random well-typed query on `resource`, as the parser would build it (offsets 0). */
export const arbQuery = (resource: Resource, maxDepth = 3): fc.Arbitrary<QueryNode> => {
  const { node } = fc.letrec<{ node: QueryNode }>((tie) => ({
    node: fc.oneof(
      { maxDepth, depthIdentifier: 'query', withCrossShrink: true },
      arbCondition(resource),
      tie('node').map((operand): QueryNode => ({ type: 'not', operand, offset: 0 })),
      fc
        .tuple(
          fc.constantFrom('and' as const, 'or' as const),
          fc.array(tie('node'), { minLength: 2, maxLength: 3 }),
        )
        .map(([type, operands]): QueryNode => ({ type, operands, offset: 0 })),
    ),
  }));
  return node;
};

/** `node` with every offset set to 0, to compare ASTs regardless of where things were written. */
export const withoutOffsets = (node: QueryNode): QueryNode => {
  switch (node.type) {
    case 'condition':
      return { ...node, offset: 0, field: { ...node.field, offset: 0 }, value: { ...node.value, offset: 0 } };
    case 'not':
      return { ...node, offset: 0, operand: withoutOffsets(node.operand) };
    default:
      return { ...node, offset: 0, operands: node.operands.map(withoutOffsets) };
  }
};
