import { parse as parseCsv } from 'csv-parse/sync';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { csvStream } from '../../src/api/formats/csv.js';
import { pageXml, xmlText } from '../../src/api/formats/xml.js';
import { TARGETS } from '../../src/api/resources.js';
import { type CsvCell, csvBatch, isoTime } from '../../src/model/csv.js';
import type { JobTarget } from '../../src/model/job.js';

const target = (n: number, extra: Partial<JobTarget> = {}): JobTarget => ({
  job_id: 1,
  device_id: `00000000-00000000-00000000-${String(n).padStart(8, '0')}`,
  status: 'successful',
  progress: 100,
  message: null,
  response: null,
  queued_time: Date.UTC(2026, 10, 28, 17, 40),
  start_time: null,
  end_time: null,
  attempt: 0,
  next_attempt_time: null,
  ...extra,
});

/** Batches of targets as the store exports them: read as values (JSON as its text), then encoded. */
async function* records(batches: readonly JobTarget[][], fields: readonly (keyof JobTarget)[]) {
  const kinds = fields.map(
    (field): CsvCell =>
      TARGETS.timestampFields.has(field) ? 'timestamp' : field === 'response' ? 'json' : 'value',
  );
  const plan = { columns: fields.map((_, index) => index), kinds, keyset: [0, 0] as const };
  for (const batch of batches) {
    const rows = batch.map((item) =>
      fields.map((field) =>
        field === 'response' && item.response !== null ? JSON.stringify(item.response) : item[field],
      ),
    );
    yield csvBatch(rows, plan).records;
  }
}

async function text(stream: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk;
  return out;
}

describe('XML', () => {
  it('escapes markup and replaces characters XML 1.0 cannot carry', () => {
    expect(xmlText('a & b <c> "d" \'e\'')).toBe('a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos;');
    expect(xmlText('bell\u0007 lone\uD800 pair\uD83D\uDE00 tab\tok')).toBe(
      'bell\uFFFD lone\uFFFD pair\uD83D\uDE00 tab\tok',
    );
  });

  it('writes lists and objects as compact JSON text, timestamps in ISO 8601, missing values empty', () => {
    const xml = pageXml(TARGETS, {
      size: 5,
      list: [target(1, { response: { ok: [1, 'two'] }, message: 'm<1>' })],
    });
    const parsed = new XMLParser({ parseTagValue: false }).parse(xml);
    expect(parsed.result.list.target).toMatchObject({
      response: '{"ok":[1,"two"]}',
      message: 'm<1>',
      queued_time: '2026-11-28T17:40:00.000Z',
      start_time: '',
    });
  });
});

describe('timestamps', () => {
  it('are written exactly as Date#toISOString writes them', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.integer({ min: 0, max: 253_402_300_799_999 }),
          fc.integer({ min: -62_198_755_200_000, max: 8_640_000_000_000_000 }),
          fc.constantFrom(0, 86_399_999, 86_400_000, 253_402_300_800_000, -1),
        ),
        (millis) => {
          expect(isoTime(millis)).toBe(new Date(millis).toISOString());
        },
      ),
      { numRuns: 5_000 },
    );
    expect(isoTime(null)).toBeNull();
  });
});

describe('CSV', () => {
  it('quotes what needs it and writes CRLF between records', async () => {
    const rows = [target(1, { message: 'a,b "c"\nd', response: ['x', { y: 1 }] }), target(2)];
    const fields = ['device_id', 'message', 'response', 'end_time'] as const;
    const csv = await text(await csvStream(fields, records([rows], fields)));
    expect(csv).toBe(
      'device_id,message,response,end_time\r\n' +
        '00000000-00000000-00000000-00000001,"a,b ""c""\nd","[""x"",{""y"":1}]",\r\n' +
        '00000000-00000000-00000000-00000002,,,\r\n',
    );
    expect(parseCsv(csv)[1]).toEqual([
      '00000000-00000000-00000000-00000001',
      'a,b "c"\nd',
      '["x",{"y":1}]',
      '',
    ]);
  });

  it('round-trips through an RFC 4180 parser, whatever the text, in batches of any size', async () => {
    const awkward = fc.string({
      unit: fc.constantFrom('a', 'Z', ' ', '"', ',', '\r', '\n', ';', 'é', '\u0000', '\uD83D\uDE00'),
      maxLength: 12,
    });
    const cellText = fc.option(fc.oneof(awkward, fc.string({ unit: 'grapheme', maxLength: 12 })), {
      nil: null,
    });
    const item = fc.record({
      message: cellText,
      response: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: null }),
      progress: fc.integer({ min: 0, max: 100 }),
      end_time: fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }), { nil: null }),
    });
    const fields = ['device_id', 'message', 'progress', 'response', 'end_time'] as const;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(item, { maxLength: 5 }), { maxLength: 4 }), async (batchItems) => {
        let n = 0;
        const batchList = batchItems.map((items) => items.map((extra) => target(++n, extra)));
        const csv = await text(await csvStream(fields, records(batchList, fields)));
        const expected = [
          fields,
          ...batchList
            .flat()
            .map((row) => [
              row.device_id,
              row.message ?? '',
              String(row.progress),
              typeof row.response === 'object' && row.response !== null
                ? JSON.stringify(row.response)
                : String(row.response ?? ''),
              row.end_time === null ? '' : new Date(row.end_time).toISOString(),
            ]),
        ];
        expect(parseCsv(csv, { relax_column_count: false })).toEqual(expected);
        expect(csv.endsWith('\r\n')).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('closes the store iterator when the client goes away mid-download', async () => {
    let closed = false;
    let served = 0;
    async function* batches() {
      try {
        for (;;) {
          served++;
          yield `${target(served).device_id}\r\n`;
        }
      } finally {
        closed = true;
      }
    }
    const stream = await csvStream(['device_id'], batches());
    await new Promise((resolve) => stream.once('data', resolve));
    stream.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
    expect(served).toBeLessThan(100);
  });

  it('fails before answering when the first batch fails, so the client gets an error status', async () => {
    async function* batches(): AsyncGenerator<string> {
      yield* [];
      throw new Error('query failed');
    }
    await expect(csvStream(['id'], batches())).rejects.toThrow('query failed');
  });
});
