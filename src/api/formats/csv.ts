import { Readable } from 'node:stream';
import type { ResourceInfo } from '../resources.js';
import { cellText } from './cells.js';
import { Utf8Writer } from './utf8.js';

const NEEDS_QUOTES = /[",\r\n]/;

/** RFC 4180: a field with a quote, comma, CR or LF is quoted, its quotes doubled. */
const csvField = (text: string): string =>
  NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;

/** One field's cell as CSV; numbers (most cells of an export) skip the text and quoting steps. */
function cellEncoder(resource: ResourceInfo<unknown>, field: string): (value: unknown) => string {
  if (resource.timestampFields.has(field)) return (value) => cellText(resource, field, value);
  return (value) => (typeof value === 'number' ? String(value) : csvField(cellText(resource, field, value)));
}

/**
 * Encodes items as CSV records, CRLF after each: UTF-8 bytes per batch, each record built by
 * concatenation without an array per row.
 */
function recordEncoder<T>(resource: ResourceInfo<T>, fields: readonly string[]): (items: T[]) => Buffer {
  const encoders = fields.map((field) => cellEncoder(resource as ResourceInfo<unknown>, field));
  const last = fields.length - 1;
  return (items) => {
    const out = new Utf8Writer();
    for (const item of items) {
      const record = item as Record<string, unknown>;
      let line = '';
      for (let index = 0; index < last; index++) {
        line += `${(encoders[index] as (value: unknown) => string)(record[fields[index] as string])},`;
      }
      out.write(
        `${line}${(encoders[last] as (value: unknown) => string)(record[fields[last] as string])}\r\n`,
      );
    }
    return out.bytes();
  };
}

/**
 * Streams every item of `batches` as CSV: the header row always, then one row per item. The first
 * batch is read before this resolves, so a failing query is still an error answer, not a cut-off
 * download; the store's iterator is closed however the stream ends (also when the client leaves).
 */
export async function csvStream<T>(
  resource: ResourceInfo<T>,
  fields: readonly string[],
  batches: AsyncIterable<T[]>,
): Promise<Readable> {
  const iterator = batches[Symbol.asyncIterator]();
  let next = await iterator.next();
  const encode = recordEncoder(resource, fields);
  let finished = next.done === true;
  async function* chunks(): AsyncGenerator<string | Buffer> {
    yield `${fields.map(csvField).join(',')}\r\n`;
    while (next.done !== true) {
      yield encode(next.value);
      next = await iterator.next();
    }
    finished = true;
  }
  const stream = Readable.from(chunks(), { objectMode: false });
  stream.on('close', () => {
    if (!finished) {
      finished = true;
      void iterator.return?.();
    }
  });
  return stream;
}
