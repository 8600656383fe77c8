import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { badRequest } from '../../model/error.js';

/**
 * XML as SCI reads and writes it, with fast-xml-parser. Untrusted XML (requests, device replies)
 * may declare nothing: a DTD or entity declaration is refused before parsing, so no external
 * entity is read (XXE) and no entity expands (billion laughs); only the five predefined entities
 * and character references are decoded.
 */

/** Attributes are keys `@name`, as in the JSON form of replies (`{"@version": "1.0"}`). */
const ATTRIBUTE_PREFIX = '@';

/** A parsed element in document order: `{name: children, ':@': {'@attr': value}}`, text as `{'#text': …}`. */
export type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };

/** An element as an object: attributes `@name`, children by name (an array when repeated), text `#text`. */
export type XmlObject = { [key: string]: unknown };

const COMMON = {
  ignoreAttributes: false,
  attributeNamePrefix: ATTRIBUTE_PREFIX,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  htmlEntities: false,
} as const;

const orderedParser = new XMLParser({ ...COMMON, preserveOrder: true });
const objectParser = new XMLParser(COMMON);
const orderedBuilder = new XMLBuilder({ ...COMMON, preserveOrder: true, suppressEmptyNode: true });
const objectBuilder = new XMLBuilder({ ...COMMON, suppressEmptyNode: true });

/** `<!` that does not open a comment or CDATA: `<!DOCTYPE`, `<!ENTITY`, `<!ELEMENT`, … */
const DECLARATION = /<!(?!--|\[CDATA\[)/;

/** Checks that `text` is well-formed XML without declarations; the reason as a 400. */
function checkXml(text: string): void {
  if (DECLARATION.test(text)) {
    throw badRequest('XML with a DTD or entity declaration (<!DOCTYPE, <!ENTITY) is not accepted');
  }
  const result = XMLValidator.validate(text);
  if (result !== true) {
    const { msg, line, col } = result.err;
    throw badRequest(`Not well-formed XML at line ${line}, column ${col}: ${msg}`);
  }
}

/**
 * Parses well-formed text with `parse`: what the parser still refuses (its limit on nested
 * elements, or nesting too deep for its recursion) is a 400, not a crash.
 */
function parsed<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw badRequest(
      `XML not accepted: ${error instanceof RangeError ? 'nested too deeply' : (error as Error).message}`,
    );
  }
}

/** A whole document, in document order (400 when it is not well-formed or declares anything). */
export function parseDocument(text: string): OrderedNode[] {
  checkXml(text);
  return parsed(() => orderedParser.parse(text) as OrderedNode[]);
}

/** Nodes back to XML text. */
export const buildOrdered = (nodes: OrderedNode[]): string => orderedBuilder.build(nodes) as string;

/** A fragment (any number of elements and text) as an object; undefined when it is not acceptable XML. */
export function parseFragment(text: string): XmlObject | undefined {
  const wrapped = `<fragment>${text}</fragment>`;
  try {
    checkXml(wrapped);
    return attributesFirst(
      parsed(() => (objectParser.parse(wrapped) as { fragment: XmlObject | string }).fragment),
    ) as XmlObject;
  } catch {
    return undefined;
  }
}

/** The parser puts an element's attributes after its children: in JSON they read better first. */
function attributesFirst(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(attributesFirst);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value).map(([key, child]) => [key, attributesFirst(child)] as const);
  return Object.fromEntries([
    ...entries.filter(([key]) => key.startsWith(ATTRIBUTE_PREFIX)),
    ...entries.filter(([key]) => !key.startsWith(ATTRIBUTE_PREFIX)),
  ]);
}

export const buildObject = (value: XmlObject): string => objectBuilder.build(value) as string;

/** The name of an ordered node's element (its one key besides the attributes); undefined for text. */
export const elementName = (node: OrderedNode): string | undefined =>
  Object.keys(node).find((key) => key !== ':@' && key !== '#text');

/** An element's attributes, without the prefix. */
export const attributesOf = (node: OrderedNode): Record<string, string> =>
  Object.fromEntries(
    Object.entries(node[':@'] ?? {}).map(([name, value]) => [
      name.slice(ATTRIBUTE_PREFIX.length),
      String(value),
    ]),
  );

/** An element's child nodes. */
export const childrenOf = (node: OrderedNode): OrderedNode[] => {
  const name = elementName(node);
  const children = name === undefined ? undefined : node[name];
  return Array.isArray(children) ? (children as OrderedNode[]) : [];
};

/** The child elements (text left out). */
export const childElements = (node: OrderedNode): OrderedNode[] =>
  childrenOf(node).filter((child) => elementName(child) !== undefined);

/** An attribute key of an XmlObject. */
export const attribute = (name: string): string => `${ATTRIBUTE_PREFIX}${name}`;
