/**
 * The reference evaluator: the query semantics over plain model objects, written independently of
 * the SQL compiler. This comment is the specification both follow.
 *
 * Values. Each field of a record has either a value or none ("missing"):
 * - number, timestamp, enum, text: missing when null (a deleted device's fields are all missing).
 *   A text `''` is a value for every operator except `empty` (see below).
 * - group: the stored normalized path (`/a/b`: leading `/`, no trailing `/`); `''` (no group) is missing.
 * - tags: the list of tags; `[]` (no tags) is missing.
 *
 * Text. Text, enum, group and tag values compare case-insensitively: both sides are folded with
 * `foldAscii` (A–Z to a–z, nothing else), then compared by Unicode code point (UTF-8 byte order,
 * SQLite's BINARY and PostgreSQL's C collation; not JavaScript's UTF-16 order). `startsWith`,
 * `endsWith`, `contains` are plain prefix, suffix, substring tests of the folded texts, with no
 * wildcard characters (`%` and `_` are literal); `''` is a prefix, suffix and substring of every
 * text. Enum values are validated and stored lower-case in the AST.
 *
 * Conditions, with x the record's value and v the AST value:
 * - `f <> v` is exactly `not (f = v)`, for every kind and for `empty`.
 * - `f = empty`: x is missing, or x is the text `''`.
 * - Every other condition is false when x is missing; otherwise:
 *   - number: numeric comparison of x with v.
 *   - timestamp: numeric comparison of x (epoch ms) with v, where a relative_time v means
 *     `now + milliseconds`.
 *   - text: `=` and `<` `<=` `>` `>=` compare fold(x) with fold(v) by code point; `startsWith`,
 *     `endsWith`, `contains` test fold(x) against fold(v).
 *   - enum: `=` only: fold(x) = v.
 *   - tags: true when at least one tag t satisfies the text condition `t op v` (`=`, `startsWith`,
 *     `endsWith`, `contains`), so `tags <> 'x'` means "has no tag x" and holds with no tags.
 *   - group, with P the path and v in the parser's canonical form (canonicalGroupValue):
 *     - `=` v (a normalized path): fold(P) = fold(v). (`group = ''` and `group = '/'` parse as
 *       `group = empty`, "in no group".)
 *     - `startsWith` v (begins with `/`): fold(P + '/') starts with fold(v). So `'/test/'` is
 *       `/test` and its subgroups, `'/test'` also `/testing/x`, `'/'` every group.
 *     - `endsWith` v (no trailing `/`): fold(P) ends with fold(v). `'/leaf'` is every group named
 *       `leaf`; `''` (from `''` or `'/'`) is every group.
 *     - `contains` v: fold(P) contains fold(v) (`/` included: `'a/b'` spans segments).
 * - `not q` is plain negation; `and`/`or` as usual.
 *
 * Records. A device query sees the device. A targets query sees the target's fields (scope
 * `target`) and its device's (scope `device`; all missing when the device was deleted). A job
 * query matches a job when at least one of its targets, taken with its device and the job,
 * satisfies the whole query; job fields (scope `job`) come from the job. Every job has at least one
 * target (CONTRACT §5), so a sub-query of job fields only may be decided on the job alone.
 */
import { type Device, foldAscii } from '../model/device.js';
import type { Job, JobTarget } from '../model/job.js';
import type { Condition, FieldRef, QueryNode } from './ast.js';

/** Reads a field of the record under test: its value, or null when it has none. */
type FieldReader = (field: FieldRef) => unknown;

/** UTF-16 units reordered so that comparing them orders strings by code point. */
const codePointOrder = (unit: number): number => {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
};

/** Compares two strings by Unicode code point: negative, zero or positive. */
export const compareCodePoints = (a: string, b: string): number => {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointOrder(x) - codePointOrder(y);
  }
  return a.length - b.length;
};

const isMissing = (x: unknown): boolean =>
  x === null || x === undefined || x === '' || (Array.isArray(x) && x.length === 0);

const compareWith = (operator: Condition['operator'], order: number): boolean => {
  switch (operator) {
    case '=':
      return order === 0;
    case '<':
      return order < 0;
    case '<=':
      return order <= 0;
    case '>':
      return order > 0;
    case '>=':
      return order >= 0;
    default:
      return false;
  }
};

/** A text condition on folded texts. */
const textMatches = (operator: Condition['operator'], x: string, v: string): boolean => {
  switch (operator) {
    case 'startsWith':
      return x.startsWith(v);
    case 'endsWith':
      return x.endsWith(v);
    case 'contains':
      return x.includes(v);
    default:
      return compareWith(operator, compareCodePoints(x, v));
  }
};

const groupMatches = (operator: Condition['operator'], path: string, v: string): boolean => {
  switch (operator) {
    case 'startsWith':
      return `${path}/`.startsWith(v);
    case 'endsWith':
      return path.endsWith(v);
    case 'contains':
      return path.includes(v);
    default:
      return path === v;
  }
};

/** A condition other than `<>`. */
const holds = (condition: Condition, read: FieldReader, now: number): boolean => {
  const x = read(condition.field);
  const { operator, value } = condition;
  if (value.type === 'empty') return isMissing(x);
  if (condition.field.kind === 'text' ? x === null || x === undefined : isMissing(x)) return false;
  switch (value.type) {
    case 'number':
      return compareWith(operator, (x as number) - value.value);
    case 'timestamp':
      return compareWith(operator, (x as number) - value.value);
    case 'relative_time':
      return compareWith(operator, (x as number) - (now + value.milliseconds));
    case 'text': {
      const v = foldAscii(value.value);
      switch (condition.field.kind) {
        case 'group':
          return groupMatches(operator, foldAscii(x as string), v);
        case 'tags':
          return (x as string[]).some((tag) => textMatches(operator, foldAscii(tag), v));
        default:
          return textMatches(operator, foldAscii(x as string), v);
      }
    }
  }
};

const evaluate = (node: QueryNode, read: FieldReader, now: number): boolean => {
  switch (node.type) {
    case 'condition':
      return node.operator === '<>' ? !holds({ ...node, operator: '=' }, read, now) : holds(node, read, now);
    case 'not':
      return !evaluate(node.operand, read, now);
    case 'and':
      return node.operands.every((operand) => evaluate(operand, read, now));
    case 'or':
      return node.operands.some((operand) => evaluate(operand, read, now));
  }
};

const field = (record: object | null, name: string): unknown =>
  record === null ? null : ((record as Record<string, unknown>)[name] ?? null);

/** Whether `device` satisfies a devices query; `now` resolves relative times. */
export function matchesDevice(node: QueryNode, device: Device, now: number): boolean {
  return evaluate(node, (ref) => field(device, ref.name), now);
}

/** Whether a job target satisfies a targets query; `device` null is a deleted device. */
export function matchesTarget(
  node: QueryNode,
  target: JobTarget,
  device: Device | null,
  now: number,
): boolean {
  return evaluate(node, (ref) => field(ref.scope === 'target' ? target : device, ref.name), now);
}

/**
 * Whether a job satisfies a jobs query: at least one (target, device) pair, together with the job,
 * satisfies the whole query. `device` null is a deleted device (every device field missing).
 */
export function matchesJob(
  node: QueryNode,
  job: Job,
  targets: { target: JobTarget; device: Device | null }[],
  now: number,
): boolean {
  return targets.some(({ target, device }) =>
    evaluate(
      node,
      (ref) => field(ref.scope === 'job' ? job : ref.scope === 'target' ? target : device, ref.name),
      now,
    ),
  );
}
