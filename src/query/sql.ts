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

/** Where the value of a field lives in the statement the caller writes. */
export type FieldColumn =
  /** A number, timestamp, enum or text column. `integer`: it holds only integers (INTEGER, bigint). */
  | { type: 'scalar'; column: RawBuilder<unknown>; nullable: boolean; integer: boolean }
  /** A normalized group path column, `''` for no group. */
  | { type: 'group'; column: RawBuilder<unknown>; nullable: boolean }
  /**
   * Tags: `anyTag(match)` is a two-valued predicate "some tag satisfies `match(lower(tag))`", and
   * `anyTag(null)` "there is a tag at all".
   */
  | { type: 'tags'; anyTag: (match: ((foldedTag: RawBuilder<unknown>) => Predicate) | null) => Predicate };

/** Maps each field a query may name to its column; the caller's FROM clause decides the aliases. */
export type FieldColumns = (field: FieldRef) => FieldColumn;

export interface CompileOptions {
  dialect: Dialect;
  /** Epoch milliseconds that relative times (`-2h`) count from. */
  now: number;
}

const TRUE: Readonly<Record<Dialect, Predicate>> = { sqlite: sql<SqlBool>`1`, postgres: sql<SqlBool>`TRUE` };
const FALSE: Readonly<Record<Dialect, Predicate>> = {
  sqlite: sql<SqlBool>`0`,
  postgres: sql<SqlBool>`FALSE`,
};

const SQL_COMPARISON: Readonly<Record<'=' | '<' | '<=' | '>' | '>=', RawBuilder<unknown>>> = {
  '=': sql.raw('='),
  '<': sql.raw('<'),
  '<=': sql.raw('<='),
  '>': sql.raw('>'),
  '>=': sql.raw('>='),
};

/**
 * Stored integers are within ±2^53 (JavaScript numbers); a value past this bound compares like
 * the bound, which keeps every bound parameter inside both dialects' integer range.
 */
const INTEGER_BOUND = 2 ** 62;

export const and = (parts: readonly Predicate[], dialect: Dialect): Predicate => {
  if (parts.length === 0) return TRUE[dialect];
  if (parts.length === 1) return parts[0] as Predicate;
  return sql<SqlBool>`(${sql.join(parts, sql` AND `)})`;
};

export const or = (parts: readonly Predicate[], dialect: Dialect): Predicate => {
  if (parts.length === 0) return FALSE[dialect];
  if (parts.length === 1) return parts[0] as Predicate;
  return sql<SqlBool>`(${sql.join(parts, sql` OR `)})`;
};

export const not = (part: Predicate): Predicate => sql<SqlBool>`NOT ${part}`;

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
export const prefixUpperBound = (prefix: string): string | null => {
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

/** The compiler for one statement: a dialect, a clock and a field mapping. */
class Compiler {
  constructor(
    private readonly columns: FieldColumns,
    private readonly dialect: Dialect,
    private readonly now: number,
  ) {}

  compile(node: QueryNode): Predicate {
    switch (node.type) {
      case 'condition':
        return node.operator === '<>' ? not(this.condition(node, '=')) : this.condition(node, node.operator);
      case 'not':
        return not(this.compile(node.operand));
      case 'and':
        return and(
          node.operands.map((operand) => this.compile(operand)),
          this.dialect,
        );
      case 'or':
        return or(
          node.operands.map((operand) => this.compile(operand)),
          this.dialect,
        );
    }
  }

  /** A condition with any operator but `<>`. */
  private condition(condition: Condition, operator: Exclude<ComparisonOperator, '<>'>): Predicate {
    const column = this.columns(condition.field);
    const { value } = condition;
    if (column.type === 'tags') {
      if (value.type === 'empty') return not(column.anyTag(null));
      const text = foldAscii(this.text(condition));
      return column.anyTag((tag) => this.textMatch(tag, operator, text));
    }
    if (column.type === 'group') {
      const present = this.present(column.column, column.nullable, sql<SqlBool>`${column.column} <> ''`);
      if (value.type === 'empty') return not(present);
      return and(
        [present, this.groupMatch(sql`lower(${column.column})`, operator, foldAscii(this.text(condition)))],
        this.dialect,
      );
    }
    const { column: expression, nullable } = column;
    if (value.type === 'empty') {
      const blank = condition.field.kind === 'text' || condition.field.kind === 'enum';
      const isEmpty = blank ? sql<SqlBool>`${expression} = ''` : null;
      if (!nullable) return isEmpty ?? FALSE[this.dialect];
      const isNull = sql<SqlBool>`${expression} IS NULL`;
      return isEmpty === null ? isNull : or([isNull, isEmpty], this.dialect);
    }
    let match: Predicate;
    switch (value.type) {
      case 'number':
        match = this.numberMatch(column, operator, value.value);
        break;
      case 'timestamp':
        match = this.numberMatch(column, operator, value.value);
        break;
      case 'relative_time':
        match = this.numberMatch(column, operator, this.now + value.milliseconds);
        break;
      case 'text':
        match =
          condition.field.kind === 'enum'
            ? this.enumMatch(expression, operator, value.value)
            : this.textMatch(sql`lower(${expression})`, operator, foldAscii(value.value));
        break;
    }
    return this.present(expression, nullable, match);
  }

  private text(condition: Condition): string {
    if (condition.value.type !== 'text') {
      throw new Error(`A ${condition.field.kind} field takes a text value, not ${condition.value.type}`);
    }
    return condition.value.value;
  }

  /** `match` where the value is present, FALSE where it is missing (NULL). */
  private present(expression: RawBuilder<unknown>, nullable: boolean, match: Predicate): Predicate {
    return nullable ? sql<SqlBool>`(${expression} IS NOT NULL AND ${match})` : match;
  }

  private enumMatch(expression: RawBuilder<unknown>, operator: ComparisonOperator, value: string): Predicate {
    if (operator !== '=') throw new Error(`An enum field does not take ${operator}`);
    // Enum columns hold their values lower-case, as the AST does.
    return sql<SqlBool>`${expression} = ${value}`;
  }

  private numberMatch(
    column: Extract<FieldColumn, { type: 'scalar' }>,
    operator: ComparisonOperator,
    value: number,
  ): Predicate {
    if (operator !== '=' && operator !== '<' && operator !== '<=' && operator !== '>' && operator !== '>=') {
      throw new Error(`A number does not take ${operator}`);
    }
    let bound = value;
    if (column.integer) {
      // Integer columns compare with an integer bound, so the parameter fits the column's type.
      if (value > INTEGER_BOUND || value < -INTEGER_BOUND) {
        const above = value > 0;
        const holds = operator === '=' ? false : operator === '<' || operator === '<=' ? above : !above;
        return holds ? TRUE[this.dialect] : FALSE[this.dialect];
      }
      if (!Number.isInteger(value)) {
        if (operator === '=') return FALSE[this.dialect];
        bound = operator === '<' || operator === '>=' ? Math.ceil(value) : Math.floor(value);
      }
    }
    return sql<SqlBool>`${column.column} ${SQL_COMPARISON[operator]} ${bound}`;
  }

  /** A text condition on a folded text expression; `value` is folded. */
  private textMatch(folded: RawBuilder<unknown>, operator: ComparisonOperator, value: string): Predicate {
    switch (operator) {
      case 'startsWith':
        return this.startsWith(folded, value);
      case 'endsWith':
        return this.endsWith(folded, value);
      case 'contains':
        return this.contains(folded, value);
      case '=':
        return sql<SqlBool>`${folded} = ${value}`;
      case '<':
      case '<=':
      case '>':
      case '>=':
        return sql<SqlBool>`${this.codePointOrdered(folded)} ${SQL_COMPARISON[operator]} ${value}`;
      case '<>':
        throw new Error('<> compiles as NOT =');
    }
  }

  /** `fold(P + '/')` starts with `value`, for a present path P (see evaluate.ts). */
  private groupMatch(folded: RawBuilder<unknown>, operator: ComparisonOperator, value: string): Predicate {
    if (operator !== 'startsWith' || !value.endsWith('/')) return this.textMatch(folded, operator, value);
    // P + '/' starts with 'v/' when P starts with 'v/' or P is 'v' itself.
    const itself = value.slice(0, -1);
    const within = this.startsWith(folded, value);
    return itself === '' ? within : or([sql<SqlBool>`${folded} = ${itself}`, within], this.dialect);
  }

  private codePointOrdered(expression: RawBuilder<unknown>): RawBuilder<unknown> {
    return this.dialect === 'postgres' ? sql`${expression} COLLATE "C"` : expression;
  }

  private startsWith(folded: RawBuilder<unknown>, prefix: string): Predicate {
    const ordered = this.codePointOrdered(folded);
    const upper = prefixUpperBound(prefix);
    if (upper === null) return prefix === '' ? TRUE[this.dialect] : sql<SqlBool>`${ordered} >= ${prefix}`;
    return sql<SqlBool>`(${ordered} >= ${prefix} AND ${ordered} < ${upper})`;
  }

  private endsWith(folded: RawBuilder<unknown>, suffix: string): Predicate {
    if (suffix === '') return TRUE[this.dialect];
    if (this.dialect === 'postgres')
      return sql<SqlBool>`right(${folded}, ${codePointLength(suffix)}) = ${suffix}`;
    // Bytes, not characters: SQLite's substr() counts characters only up to a NUL.
    const bytes = Buffer.from(suffix, 'utf8');
    return sql<SqlBool>`substr(CAST(${folded} AS BLOB), ${-bytes.length}) = ${bytes}`;
  }

  private contains(folded: RawBuilder<unknown>, part: string): Predicate {
    if (part === '') return TRUE[this.dialect];
    return this.dialect === 'postgres'
      ? sql<SqlBool>`strpos(${folded}, ${part}) > 0`
      : sql<SqlBool>`instr(${folded}, ${part}) > 0`;
  }
}

/**
 * Compiles `node` to a two-valued predicate over the columns `columns` names. `options.now`
 * resolves relative times.
 */
export function compileQuery(node: QueryNode, columns: FieldColumns, options: CompileOptions): Predicate {
  return new Compiler(columns, options.dialect, options.now).compile(node);
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
