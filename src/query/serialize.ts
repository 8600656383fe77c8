import type { QueryNode, Value } from './ast.js';
import { fieldQueryName } from './fields.js';

const quote = (text: string): string => `'${text.replaceAll("'", "''")}'`;

const serializeValue = (value: Value): string => {
  switch (value.type) {
    case 'text':
      return quote(value.value);
    case 'timestamp':
      return quote(value.raw);
    case 'number':
    case 'relative_time':
      return value.raw;
    case 'empty':
      return 'empty';
  }
};

/** `node` as text; `parenthesize` when it must stay one operand of the enclosing node. */
const serialize = (node: QueryNode, parenthesize: boolean): string => {
  switch (node.type) {
    case 'condition':
      return `${fieldQueryName(node.field)} ${node.operator} ${serializeValue(node.value)}`;
    case 'not':
      return `not ${serialize(node.operand, true)}`;
    case 'and':
    case 'or': {
      const text = node.operands
        .map((operand) => serialize(operand, operand.type !== 'not'))
        .join(` ${node.type} `);
      return parenthesize ? `(${text})` : text;
    }
  }
};

/**
 * Query text that parses back to the same AST, offsets aside: nested `and`/`or` nodes keep their
 * parentheses even where precedence would not need them, so the tree shape survives.
 */
export function serializeQuery(node: QueryNode): string {
  return serialize(node, false);
}
