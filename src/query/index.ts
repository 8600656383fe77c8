/**
 * The v1 query language (CONTRACT §6): the one entry point the rest of the service uses.
 * The SQL compiler lives beside it in `sql.ts`.
 */
export type {
  And,
  ComparisonOperator,
  Condition,
  FieldKind,
  FieldRef,
  FieldScope,
  Not,
  Or,
  QueryNode,
  QueryNode as Query,
  Value,
} from './ast.js';
export { compareCodePoints, matchesDevice, matchesJob, matchesTarget } from './evaluate.js';
export type { FieldInfo, Resource } from './fields.js';
export { fieldQueryName, queryFields } from './fields.js';
export {
  canonicalGroupValue,
  MAX_QUERY_DEPTH,
  MAX_QUERY_LENGTH,
  OPERATORS_BY_KIND,
  parseIsoTimestamp,
  parseQuery,
} from './parser.js';
export { serializeQuery } from './serialize.js';
