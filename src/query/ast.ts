/**
 * The query AST: a discriminated union on `type`; every node carries the 0-based offset in the
 * source text where it starts (error messages show it 1-based).
 */

export type FieldKind = 'number' | 'text' | 'enum' | 'group' | 'tags' | 'timestamp';

/**
 * Which record a field belongs to: the job, one of its target devices, the target itself, a group
 * of the inventory, or a monitor.
 */
export type FieldScope = 'job' | 'device' | 'target' | 'group' | 'monitor';

export type ComparisonOperator =
  | '='
  | '<>'
  | '<'
  | '<='
  | '>'
  | '>='
  | 'startsWith'
  | 'endsWith'
  | 'contains';

export interface FieldRef {
  /** The stored field name, e.g. `name`, `group`, `job_status` (without any `device.` prefix). */
  name: string;
  scope: FieldScope;
  kind: FieldKind;
  offset: number;
}

export type Value =
  | { type: 'text'; value: string; offset: number }
  | { type: 'number'; value: number; raw: string; offset: number }
  /** An absolute timestamp, written as a quoted ISO 8601 text. */
  | { type: 'timestamp'; value: number; raw: string; offset: number }
  /** A time relative to now, e.g. `-10s`, `+1d`: `milliseconds` is signed. */
  | { type: 'relative_time'; milliseconds: number; raw: string; offset: number }
  | { type: 'empty'; offset: number };

export interface Condition {
  type: 'condition';
  field: FieldRef;
  operator: ComparisonOperator;
  value: Value;
  offset: number;
}

export interface And {
  type: 'and';
  operands: QueryNode[];
  offset: number;
}

export interface Or {
  type: 'or';
  operands: QueryNode[];
  offset: number;
}

export interface Not {
  type: 'not';
  operand: QueryNode;
  offset: number;
}

export type QueryNode = Condition | And | Or | Not;
