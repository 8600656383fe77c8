/**
 * The SQL compiler: a query AST to a kysely `sql` predicate for SQLite or PostgreSQL, following the
 * semantics specified at the top of evaluate.ts exactly.
 *
 * Every condition compiles to a two-valued predicate (TRUE or FALSE, never NULL), so `not` and `<>`
 * (compiled as `NOT (f = v)`) are plain negations in SQL too, whatever SQL's three-valued logic
 * would make of a NULL. A condition on a value that may be missing is guarded by its presence test.
 *
 * Text is folded with `lower()` on the column side (ASCII-only in SQLite, and in PostgreSQL under
 * the C collation its text columns use) and with `foldAscii` on the value side; texts then compare
 * by code point (SQLite's BINARY, PostgreSQL's "C"). Prefix tests are ranges on the folded text, so
 * an index on `lower(column)` serves them. Every value is a bound parameter.
 */
import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { foldAscii } from '../model/device.js';
import type { ComparisonOperator, Condition, FieldRef, QueryNode } from './ast.js';

export type Dialect = 'sqlite' | 'postgres';

export type Predicate = RawBuilder<SqlBool>;

/**
 * Where the value of a field lives in the statement the caller writes. Column texts are SQL written
 * by the store (never user input), e.g. `"d"."name"`.
 */
export type FieldColumn =
  /** A number, timestamp, enum or text column. `integer`: it holds only integers (INTEGER, bigint). */
  | { type: 'scalar'; column: string; nullable: boolean; integer: boolean }
  /** A normalized group path column, `''` for no group. */
  | { type: 'group'; column: string; nullable: boolean }
  /**
   * Tags, one row per tag: `any` is a two-valued predicate "there is a tag at all"; "some tag
   * satisfies C" is `open`, then C on the folded tag `foldedTag`, then `close`, also two-valued.
   */
  | { type: 'tags'; any: string; open: string; foldedTag: string; close: string };

/** Maps each field a query may name to its column; the caller's FROM clause decides the aliases. */
export type FieldColumns = (field: FieldRef) => FieldColumn;

export interface CompileOptions {
  dialect: Dialect;
  /** Epoch milliseconds that relative times (`-2h`) count from. */
  now: number;
}

const TRUE: Readonly<Record<Dialect, string>> = { sqlite: '1', postgres: 'TRUE' };
const FALSE: Readonly<Record<Dialect, string>> = { sqlite: '0', postgres: 'FALSE' };

/**
 * Stored integers are JavaScript numbers, within ±2^53: a condition with a value past this bound
 * is decided without a parameter, so every parameter fits both dialects' integer types.
 */
const INTEGER_BOUND = 2 ** 62;

/** `parts` all hold (TRUE for none). */
export const and = (parts: readonly Predicate[], dialect: Dialect): Predicate => {
  if (parts.length === 0) return sql<SqlBool>`${sql.raw(TRUE[dialect])}`;
  if (parts.length === 1) return parts[0] as Predicate;
  return sql<SqlBool>`(${sql.join(parts, sql` AND `)})`;
};

/** One of `parts` holds (FALSE for none). */
export const or = (parts: readonly Predicate[], dialect: Dialect): Predicate => {
  if (parts.length === 0) return sql<SqlBool>`${sql.raw(FALSE[dialect])}`;
  if (parts.length === 1) return parts[0] as Predicate;
  return sql<SqlBool>`(${sql.join(parts, sql` OR `)})`;
};

const codePointLength = (text: string): number => {
  let length = 0;
  for (const _ of text) length++;
  return length;
};

/**
 * The least text greater than every text that starts with `prefix`, by code point: the prefix up to
 * its last code point below U+10FFFF, that code point incremented (stepping over the surrogates).
 * `null` when there is none (every code point is U+10FFFF, or the prefix is empty).
 */
const prefixUpperBound = (prefix: string): string | null => {
  const codePoints = Array.from(prefix, (char) => char.codePointAt(0) as number);
  while (codePoints.length > 0) {
    const last = codePoints.pop() as number;
    if (last < 0x10ffff) {
      codePoints.push(last === 0xd7ff ? 0xe000 : last + 1);
      return String.fromCodePoint(...codePoints);
    }
  }
  return null;
};

type Comparison = '=' | '<' | '<=' | '>' | '>=';
type Operator = Exclude<ComparisonOperator, '<>'>;

/**
 * Writes one predicate as SQL text with bound values, then hands it to kysely as a single `sql`
 * fragment: one node per query instead of one per condition keeps compiling cheap.
 */
class Compiler {
  private readonly texts: string[] = [''];
  private readonly values: unknown[] = [];

  constructor(
    private readonly columns: FieldColumns,
    private readonly dialect: Dialect,
    private readonly now: number,
  ) {}

  finish(): Predicate {
    return sql<SqlBool>(this.texts as unknown as TemplateStringsArray, ...this.values);
  }

  private text(text: string): void {
    this.texts[this.texts.length - 1] += text;
  }

  private value(value: unknown): void {
    this.values.push(value);
    this.texts.push('');
  }

  private constant(holds: boolean): void {
    this.text(holds ? TRUE[this.dialect] : FALSE[this.dialect]);
  }

  /** Writes `parts` joined by AND/OR, each written by `write`. */
  private junction<T>(parts: readonly T[], separator: ' AND ' | ' OR ', write: (part: T) => void): void {
    if (parts.length === 1) {
      write(parts[0] as T);
      return;
    }
    this.text('(');
    parts.forEach((part, index) => {
      if (index > 0) this.text(separator);
      write(part);
    });
    this.text(')');
  }

  query(node: QueryNode): void {
    switch (node.type) {
      case 'condition':
        if (node.operator === '<>') this.text('NOT ');
        this.condition(node, node.operator === '<>' ? '=' : node.operator);
        break;
      case 'not':
        this.text('NOT ');
        this.query(node.operand);
        break;
      case 'and':
        this.junction(node.operands, ' AND ', (operand) => this.query(operand));
        break;
      case 'or':
        this.junction(node.operands, ' OR ', (operand) => this.query(operand));
        break;
    }
  }

  /** A condition with any operator but `<>`, always written as one parenthesized or atomic term. */
  private condition(condition: Condition, operator: Operator): void {
    const column = this.columns(condition.field);
    const { value } = condition;
    if (column.type === 'tags') {
      if (value.type === 'empty') {
        this.text(`NOT ${column.any}`);
        return;
      }
      const text = foldAscii(this.textValue(condition));
      this.text(column.open);
      this.textMatch(column.foldedTag, operator, text);
      this.text(column.close);
      return;
    }
    if (column.type === 'group') {
      // On the folded path (empty exactly when the path is), so that the index on it answers the
      // whole condition without reading the rows.
      const folded = `lower(${column.column})`;
      const present = column.nullable
        ? `${column.column} IS NOT NULL AND ${folded} <> ''`
        : `${folded} <> ''`;
      if (value.type === 'empty') {
        this.text(`NOT (${present})`);
        return;
      }
      this.text(`(${present} AND `);
      this.groupMatch(folded, operator, foldAscii(this.textValue(condition)));
      this.text(')');
      return;
    }
    const { column: expression, nullable } = column;
    if (value.type === 'empty') {
      const blank = condition.field.kind === 'text' || condition.field.kind === 'enum';
      if (!nullable) this.text(blank ? `${expression} = ''` : FALSE[this.dialect]);
      else this.text(blank ? `(${expression} IS NULL OR ${expression} = '')` : `${expression} IS NULL`);
      return;
    }
    // A missing value (NULL) fails the condition: the guard keeps the term TRUE or FALSE.
    this.text(nullable ? `(${expression} IS NOT NULL AND ` : '(');
    switch (value.type) {
      case 'number':
      case 'timestamp':
        this.numberMatch(column, operator, value.value);
        break;
      case 'relative_time':
        this.numberMatch(column, operator, this.now + value.milliseconds);
        break;
      case 'text':
        if (condition.field.kind === 'enum') {
          if (operator !== '=') throw new Error(`An enum field does not take ${operator}`);
          // Enum columns hold their values lower-case, as the AST does.
          this.text(`${expression} = `);
          this.value(value.value);
        } else {
          this.textMatch(`lower(${expression})`, operator, foldAscii(value.value));
        }
        break;
    }
    this.text(')');
  }

  private textValue(condition: Condition): string {
    if (condition.value.type !== 'text') {
      throw new Error(`A ${condition.field.kind} field takes a text value, not ${condition.value.type}`);
    }
    return condition.value.value;
  }

  private numberMatch(
    column: Extract<FieldColumn, { type: 'scalar' }>,
    operator: Operator,
    value: number,
  ): void {
    if (operator !== '=' && operator !== '<' && operator !== '<=' && operator !== '>' && operator !== '>=') {
      throw new Error(`A number does not take ${operator}`);
    }
    let bound = value;
    if (column.integer) {
      // Integer columns compare with an integer bound, so the parameter fits the column's type.
      if (value > INTEGER_BOUND || value < -INTEGER_BOUND) {
        const above = value > 0;
        this.constant(operator === '=' ? false : operator === '<' || operator === '<=' ? above : !above);
        return;
      }
      if (!Number.isInteger(value)) {
        if (operator === '=') {
          this.constant(false);
          return;
        }
        bound = operator === '<' || operator === '>=' ? Math.ceil(value) : Math.floor(value);
      }
    }
    this.compare(column.column, operator, bound);
  }

  private compare(expression: string, operator: Comparison, value: unknown): void {
    this.text(`${expression} ${operator} `);
    this.value(value);
  }

  /** A text condition on a folded text expression; `value` is folded. */
  private textMatch(folded: string, operator: Operator, value: string): void {
    switch (operator) {
      case 'startsWith':
        this.startsWith(folded, value);
        break;
      case 'endsWith':
        this.endsWith(folded, value);
        break;
      case 'contains':
        this.contains(folded, value);
        break;
      case '=':
        this.compare(folded, operator, value);
        break;
      default:
        this.compare(this.codePointOrdered(folded), operator, value);
    }
  }

  /** `fold(P + '/')` starts with `value`, for a present path P (see evaluate.ts). */
  private groupMatch(folded: string, operator: Operator, value: string): void {
    if (operator !== 'startsWith' || !value.endsWith('/') || value === '/') {
      this.textMatch(folded, operator, value);
      return;
    }
    // P + '/' starts with 'v/' when P is 'v' itself or starts with 'v/'.
    this.text('(');
    this.compare(folded, '=', value.slice(0, -1));
    this.text(' OR ');
    this.startsWith(folded, value);
    this.text(')');
  }

  private codePointOrdered(expression: string): string {
    return this.dialect === 'postgres' ? `${expression} COLLATE "C"` : expression;
  }

  /** A range on the folded text, which an index on it serves. */
  private startsWith(folded: string, prefix: string): void {
    if (prefix === '') {
      this.constant(true);
      return;
    }
    const ordered = this.codePointOrdered(folded);
    const upper = prefixUpperBound(prefix);
    if (upper === null) {
      this.compare(ordered, '>=', prefix);
      return;
    }
    this.text('(');
    this.compare(ordered, '>=', prefix);
    this.text(' AND ');
    this.compare(ordered, '<', upper);
    this.text(')');
  }

  private endsWith(folded: string, suffix: string): void {
    if (suffix === '') {
      this.constant(true);
      return;
    }
    if (this.dialect === 'postgres') {
      this.text(`right(${folded}, `);
      this.value(codePointLength(suffix));
      this.text(') = ');
      this.value(suffix);
      return;
    }
    // Bytes, not characters: SQLite's substr() counts characters only up to a NUL. It answers
    // NULL for an empty blob, which does not end with a non-empty suffix.
    const bytes = Buffer.from(suffix, 'utf8');
    this.text(`coalesce(substr(CAST(${folded} AS BLOB), `);
    this.value(-bytes.length);
    this.text(') = ');
    this.value(bytes);
    this.text(', 0)');
  }

  private contains(folded: string, part: string): void {
    if (part === '') {
      this.constant(true);
      return;
    }
    this.text(this.dialect === 'postgres' ? `strpos(${folded}, ` : `instr(${folded}, `);
    this.value(part);
    this.text(') > 0');
  }
}

/**
 * Compiles `node` to a two-valued predicate over the columns `columns` names. `options.now`
 * resolves relative times.
 */
export function compileQuery(node: QueryNode, columns: FieldColumns, options: CompileOptions): Predicate {
  const compiler = new Compiler(columns, options.dialect, options.now);
  compiler.query(node);
  return compiler.finish();
}

/** Whether `node` names any field of `scope`. */
export function usesScope(node: QueryNode, scope: FieldRef['scope']): boolean {
  switch (node.type) {
    case 'condition':
      return node.field.scope === scope;
    case 'not':
      return usesScope(node.operand, scope);
    case 'and':
    case 'or':
      return node.operands.some((operand) => usesScope(operand, scope));
  }
}

/** Whether every field `node` names passes `test`. */
export function everyField(node: QueryNode, test: (field: FieldRef) => boolean): boolean {
  switch (node.type) {
    case 'condition':
      return test(node.field);
    case 'not':
      return everyField(node.operand, test);
    case 'and':
    case 'or':
      return node.operands.every((operand) => everyField(operand, test));
  }
}

/**
 * Whether `node` holds when every field of `scope` is missing and no other field is named: a
 * missing value satisfies `= empty` and `<> v` (for a non-empty v) and nothing else.
 */
export function holdsWhenMissing(node: QueryNode): boolean {
  switch (node.type) {
    case 'condition': {
      const equal = node.operator === '=' || node.operator === '<>' ? node.value.type === 'empty' : false;
      return node.operator === '<>' ? !equal : equal;
    }
    case 'not':
      return !holdsWhenMissing(node.operand);
    case 'and':
      return node.operands.every(holdsWhenMissing);
    case 'or':
      return node.operands.some(holdsWhenMissing);
  }
}
