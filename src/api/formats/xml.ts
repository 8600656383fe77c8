import type { ResourceInfo } from '../resources.js';
import { cellText } from './cells.js';

/** Characters XML 1.0 cannot carry at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF). */
const NOT_XML = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const SPECIAL = /[&<>"']/g;
const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** Anything that may need work: markup, controls, surrogates, U+FFFE/U+FFFF. Most values have none. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding the controls XML forbids is the point
const SUSPECT = /[&<>"'\x00-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]/;

/** Text as XML character data: markup escaped, characters XML cannot hold replaced by U+FFFD. */
export const xmlText = (text: string): string =>
  SUSPECT.test(text)
    ? text.replace(NOT_XML, '\uFFFD').replace(SPECIAL, (char) => ENTITIES[char] ?? char)
    : text;

/** Text without the characters XML 1.0 cannot carry (replaced by U+FFFD), for a builder that escapes markup. */
export const xmlCharacters = (text: string): string => text.replace(NOT_XML, '\uFFFD');

const element = (name: string, text: string): string => `<${name}>${xmlText(text)}</${name}>`;

interface Page<T> {
  size: number;
  cursor?: string | undefined;
  next_uri?: string | undefined;
  list: readonly T[];
}

/**
 * `<?xml …?><result><count/><size/>[<cursor/><next_uri/>]<list><job>…</job>…</list></result>`: one
 * element per field, named as in JSON, empty for no value. Written directly (element names are
 * fixed field names, values escaped): a builder took several times longer for a page of 1,000.
 */
export function pageXml<T>(resource: ResourceInfo<T>, page: Page<T>): string {
  const parts = ['<?xml version="1.0" encoding="UTF-8"?><result>'];
  parts.push(element('count', String(page.list.length)), element('size', String(page.size)));
  if (page.cursor !== undefined) parts.push(element('cursor', page.cursor));
  if (page.next_uri !== undefined) parts.push(element('next_uri', page.next_uri));
  parts.push('<list>');
  for (const item of page.list) {
    const record = item as Record<string, unknown>;
    parts.push(`<${resource.element}>`);
    for (const field of resource.fields) parts.push(element(field, cellText(resource, field, record[field])));
    parts.push(`</${resource.element}>`);
  }
  parts.push('</list></result>');
  return parts.join('');
}
