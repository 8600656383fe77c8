import { foldAscii, normalizeGroup } from '../model/device.js';
import { badRequest } from '../model/error.js';
import type { ComparisonOperator, Condition, FieldRef, QueryNode, Value } from './ast.js';
import { describeFields, type FieldInfo, queryFields, type Resource } from './fields.js';
import { Lexer } from './lexer.js';

/** A query may be at most this many bytes of UTF-8 (4 KiB); a longer one is 400. */
export const MAX_QUERY_LENGTH = 4096;
/** How deeply parentheses and `not` may nest; deeper is 400. */
export const MAX_QUERY_DEPTH = 64;

const ALL_OPERATORS: readonly ComparisonOperator[] = [
  '=',
  '<>',
  '<',
  '<=',
  '>',
  '>=',
  'startsWith',
  'endsWith',
  'contains',
];
const WORD_OPERATORS: ReadonlyMap<string, ComparisonOperator> = new Map([
  ['startswith', 'startsWith'],
  ['endswith', 'endsWith'],
  ['contains', 'contains'],
]);
const EQUALITY: readonly ComparisonOperator[] = ['=', '<>'];
const ORDERED: readonly ComparisonOperator[] = ['=', '<>', '<', '<=', '>', '>='];
const MATCHING: readonly ComparisonOperator[] = ['=', '<>', 'startsWith', 'endsWith', 'contains'];

/** The operators each kind of field takes (CONTRACT §6). */
export const OPERATORS_BY_KIND = {
  number: ORDERED,
  timestamp: ORDERED,
  text: ALL_OPERATORS,
  enum: EQUALITY,
  group: MATCHING,
  tags: MATCHING,
} as const satisfies Record<FieldRef['kind'], readonly ComparisonOperator[]>;

const KEYWORDS = new Set(['and', 'or', 'not', 'empty']);
const MAX_SHOWN_TOKEN = 40;

/**
 * The canonical form of a group value, which the evaluator and the SQL compiler both rely on:
 * `=`/`<>` take the normalized path (leading `/`, no trailing `/`), and a value that normalizes to
 * no group (`''`, `'/'`) becomes `empty`; `startsWith` gets its implied leading `/`; `endsWith`
 * loses its trailing `/`s (no stored path ends with one); `contains` is kept as written.
 */
export const canonicalGroupValue = (operator: ComparisonOperator, text: string): string | null => {
  switch (operator) {
    case '=':
    case '<>': {
      const path = normalizeGroup(text);
      return path === '' ? null : path;
    }
    case 'startsWith':
      return text.startsWith('/') ? text : `/${text}`;
    case 'endsWith':
      return text.replace(/\/+$/, '');
    default:
      return text;
  }
};

const DAYS_BEFORE_MONTH = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

const isLeapYear = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);

/** Days from 1970-01-01 to the given proleptic Gregorian date (month 1-12). */
const daysFromCivil = (year: number, month: number, day: number): number => {
  const y = year - 1970;
  const leapDays =
    Math.floor((year - 1 - 1968) / 4) -
    Math.floor((year - 1 - 1900) / 100) +
    Math.floor((year - 1 - 1600) / 400);
  const leapToday = month > 2 && isLeapYear(year) ? 1 : 0;
  return y * 365 + leapDays + (DAYS_BEFORE_MONTH[month - 1] ?? 0) + leapToday + day - 1;
};

/**
 * Parses an ISO 8601 date or date-time strictly (`2026-11-28`, `2026-11-28T17:40`,
 * `2026-11-28T17:40:00.123+01:00`, ...) to epoch milliseconds; a time without a zone is UTC, a date
 * alone is its midnight UTC, digits past milliseconds are cut off. `null` for anything else,
 * including dates that do not exist (`2026-02-30`).
 */
export const parseIsoTimestamp = (text: string): number | null => {
  const m = ISO_8601.exec(text);
  if (m === null) return null;
  const [, y, mo, d, h = '0', mi = '0', s = '0', fraction = '', , sign, oh = '0', om = '0'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  const offsetHours = Number(oh);
  const offsetMinutes = Number(om);
  const monthDays =
    month === 2 && isLeapYear(year) ? 29 : [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (monthDays === undefined || day < 1 || day > monthDays) return null;
  if (hour > 23 || minute > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) return null;
  const milliseconds = Number(fraction.slice(0, 3).padEnd(3, '0'));
  const offset = (sign === '-' ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return (
    ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60_000 +
    second * 1000 +
    milliseconds -
    offset
  );
};

/** The 1-based position of a 0-based UTF-16 offset, counted in code points. */
const position = (text: string, offset: number): number => {
  let pos = 1;
  for (let i = 0; i < offset; i++) {
    const c = text.charCodeAt(i);
    if (
      !(
        c >= 0xdc00 &&
        c <= 0xdfff &&
        i > 0 &&
        text.charCodeAt(i - 1) >= 0xd800 &&
        text.charCodeAt(i - 1) <= 0xdbff
      )
    )
      pos++;
  }
  return pos;
};

const invalid = (text: string, offset: number, expected: string, found: string) =>
  badRequest(`Invalid query at position ${position(text, offset)}: expected ${expected} but found ${found}`);

const quoteList = (values: readonly string[]): string => values.map((value) => `'${value}'`).join(', ');

class Parser {
  private readonly lexer: Lexer;
  private readonly fields: ReadonlyMap<string, FieldInfo>;

  constructor(
    private readonly text: string,
    private readonly resource: Resource,
  ) {
    this.lexer = new Lexer(text);
    this.fields = queryFields(resource);
  }

  parse(): QueryNode {
    const node = this.or(0);
    if (this.lexer.kind !== 'end') this.fail(`'and', 'or' or the end of the query`);
    return node;
  }

  /** What the current token looks like in a message: its text (shortened), or `end of query`. */
  private found(): string {
    const lexer = this.lexer;
    if (lexer.kind === 'end') return 'end of query';
    const chars = Array.from(lexer.raw);
    const shown = chars.length > MAX_SHOWN_TOKEN ? `${chars.slice(0, MAX_SHOWN_TOKEN).join('')}…` : lexer.raw;
    // A string token shows its own quotes.
    return lexer.kind === 'string' ? shown : `'${shown}'`;
  }

  private fail(expected: string, offset = this.lexer.start): never {
    if (this.lexer.unterminated) {
      throw invalid(
        this.text,
        this.text.length,
        `' to close the text that starts at position ${position(this.text, this.lexer.start)}`,
        'end of query',
      );
    }
    throw invalid(this.text, offset, expected, this.found());
  }

  private or(depth: number): QueryNode {
    const offset = this.lexer.start;
    const first = this.and(depth);
    if (!this.lexer.isKeyword('or')) return first;
    const operands = [first];
    while (this.lexer.isKeyword('or')) {
      this.lexer.next();
      operands.push(this.and(depth));
    }
    return { type: 'or', operands, offset };
  }

  private and(depth: number): QueryNode {
    const offset = this.lexer.start;
    const first = this.unary(depth);
    if (!this.lexer.isKeyword('and')) return first;
    const operands = [first];
    while (this.lexer.isKeyword('and')) {
      this.lexer.next();
      operands.push(this.unary(depth));
    }
    return { type: 'and', operands, offset };
  }

  private unary(depth: number): QueryNode {
    const lexer = this.lexer;
    const offset = lexer.start;
    const nesting = lexer.kind === '(' || lexer.isKeyword('not');
    if (nesting && depth >= MAX_QUERY_DEPTH) {
      this.fail(`at most ${MAX_QUERY_DEPTH} nested levels of parentheses and 'not'`);
    }
    if (lexer.kind === '(') {
      lexer.next();
      const node = this.or(depth + 1);
      if (!lexer.at(')')) this.fail(`'and', 'or' or ')'`);
      lexer.next();
      return node;
    }
    if (nesting) {
      lexer.next();
      return { type: 'not', operand: this.unary(depth + 1), offset };
    }
    return this.condition();
  }

  private condition(): Condition {
    const lexer = this.lexer;
    const offset = lexer.start;
    const info = lexer.kind === 'word' ? this.fields.get(lexer.raw.toLowerCase()) : undefined;
    if (info === undefined) {
      if (lexer.kind === 'word' && !KEYWORDS.has(lexer.raw.toLowerCase())) {
        this.fail(`a field (${describeFields(this.resource)})`);
      }
      this.fail(`a field, 'not' or '('`);
    }
    const field: FieldRef = { name: info.name, scope: info.scope, kind: info.kind, offset };
    lexer.next();
    const operator = this.operator(info);
    return { type: 'condition', field, operator, value: this.value(info, operator), offset };
  }

  private operator(info: FieldInfo): ComparisonOperator {
    const lexer = this.lexer;
    let operator: ComparisonOperator | undefined;
    if (lexer.kind === 'symbol') operator = lexer.raw as ComparisonOperator;
    else if (lexer.kind === 'word') operator = WORD_OPERATORS.get(lexer.raw.toLowerCase());
    if (operator === undefined) this.fail(`an operator (${ALL_OPERATORS.join(', ')})`);
    const allowed: readonly ComparisonOperator[] = OPERATORS_BY_KIND[info.kind];
    if (!allowed.includes(operator)) {
      this.fail(`an operator for the ${info.kind} field ${info.name} (${allowed.join(', ')})`);
    }
    lexer.next();
    return operator;
  }

  private value(info: FieldInfo, operator: ComparisonOperator): Value {
    const lexer = this.lexer;
    const offset = lexer.start;
    const emptyAllowed = operator === '=' || operator === '<>';
    const orEmpty = emptyAllowed ? ' or empty' : '';
    if (emptyAllowed && lexer.isKeyword('empty')) {
      lexer.next();
      return { type: 'empty', offset };
    }
    let value: Value | undefined;
    switch (info.kind) {
      case 'number':
        if (lexer.kind !== 'number') this.fail(`a number (like 42, -8.5 or 0x1F)${orEmpty}`);
        value = { type: 'number', value: lexer.numberValue, raw: lexer.raw, offset };
        break;
      case 'timestamp':
        if (lexer.kind === 'relative') {
          value = { type: 'relative_time', milliseconds: lexer.numberValue, raw: lexer.raw, offset };
          break;
        }
        {
          const expected = `an ISO 8601 timestamp in quotes (like '2026-11-28T00:00:00Z') or a time relative to now (like -10s, -5m, -2h, -30d, +1d)${orEmpty}`;
          if (lexer.kind !== 'string') this.fail(expected);
          const time = parseIsoTimestamp(lexer.stringValue);
          if (time === null) this.fail(expected);
          value = { type: 'timestamp', value: time, raw: lexer.stringValue, offset };
        }
        break;
      case 'enum': {
        const values = info.values ?? [];
        const expected = `one of ${quoteList(values)}${orEmpty}`;
        if (lexer.kind !== 'string') this.fail(expected);
        const folded = foldAscii(lexer.stringValue);
        if (!values.includes(folded)) this.fail(expected);
        value = { type: 'text', value: folded, offset };
        break;
      }
      default: {
        if (lexer.kind !== 'string') this.fail(`a text in single quotes (like 'abc')${orEmpty}`);
        if (info.kind !== 'group') {
          value = { type: 'text', value: lexer.stringValue, offset };
          break;
        }
        const path = canonicalGroupValue(operator, lexer.stringValue);
        value = path === null ? { type: 'empty', offset } : { type: 'text', value: path, offset };
      }
    }
    lexer.next();
    return value;
  }
}

const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Parses a query for `resource`. `null` for an absent or blank query; anything that is not a valid
 * query throws AppError(400, 'Invalid query at position P: expected X but found Y'), P 1-based in
 * code points.
 */
export function parseQuery(text: string | undefined, resource: Resource): QueryNode | null {
  if (text === undefined || text.trim() === '') return null;
  if (text.length > MAX_QUERY_LENGTH || Buffer.byteLength(text) > MAX_QUERY_LENGTH) {
    throw badRequest(
      `Invalid query: expected at most ${MAX_QUERY_LENGTH} bytes (4 KiB) but found ${Buffer.byteLength(text)} bytes`,
    );
  }
  const surrogate = LONE_SURROGATE.exec(text);
  if (surrogate !== null) {
    throw invalid(text, surrogate.index, 'Unicode text', 'a lone surrogate code unit');
  }
  // PostgreSQL text cannot hold NUL: refused on every store, so both answer alike.
  const nul = text.indexOf('\0');
  if (nul !== -1) throw invalid(text, nul, 'text without NUL', 'NUL (U+0000)');
  return new Parser(text, resource).parse();
}
