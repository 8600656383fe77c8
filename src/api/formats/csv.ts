import { Readable } from 'node:stream';
import { csvField } from '../../model/csv.js';
import type { CsvRecords } from '../../store/store.js';

/**
 * Streams a CSV export: the header row of `fields` always, then the store's records as they come.
 * The first batch is read before this resolves, so a failing query is still an error answer, not
 * a cut-off download; the store's iterator is closed however the stream ends (also when the
 * client leaves).
 */
export async function csvStream(fields: readonly string[], records: CsvRecords): Promise<Readable> {
  const iterator = records[Symbol.asyncIterator]();
  let next = await iterator.next();
  let finished = next.done === true;
  async function* chunks(): AsyncGenerator<string | Uint8Array> {
    yield `${fields.map(csvField).join(',')}\r\n`;
    while (next.done !== true) {
      yield next.value;
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
