import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import type { ResourceInfo } from '../resources.js';
import { cellText } from './cells.js';

/** RFC 4180: CRLF between records; a field with a quote, comma, CR or LF is quoted, quotes doubled. */
const CSV_OPTIONS = { record_delimiter: '\r\n', quoted_match: /[\r\n]/ } as const;

const csvRows = (rows: string[][]): string => stringify(rows, CSV_OPTIONS);

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
  const toRow = (item: T): string[] => {
    const record = item as Record<string, unknown>;
    return fields.map((field) => cellText(resource, field, record[field]));
  };
  let finished = next.done === true;
  async function* chunks(): AsyncGenerator<string> {
    yield csvRows([[...fields]]);
    while (next.done !== true) {
      yield csvRows(next.value.map(toRow));
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
