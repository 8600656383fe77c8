import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { csvStream } from '../../src/api/formats/csv.js';
import { pageXml, xmlText } from '../../src/api/formats/xml.js';
import { DEVICES, TARGETS } from '../../src/api/resources.js';
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
  ...extra,
});

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

describe('CSV', () => {
  it('quotes what needs it and writes CRLF between records', async () => {
    const rows = [target(1, { message: 'a,b "c"\nd', response: ['x', { y: 1 }] }), target(2)];
    async function* batches() {
      yield rows;
    }
    const csv = await text(
      await csvStream(TARGETS, ['device_id', 'message', 'response', 'end_time'], batches()),
    );
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

  it('closes the store iterator when the client goes away mid-download', async () => {
    let closed = false;
    let served = 0;
    async function* batches() {
      try {
        for (;;) {
          served++;
          yield [target(served)];
        }
      } finally {
        closed = true;
      }
    }
    const stream = await csvStream(TARGETS, ['device_id'], batches());
    await new Promise((resolve) => stream.once('data', resolve));
    stream.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(true);
    expect(served).toBeLessThan(100);
  });

  it('fails before answering when the first batch fails, so the client gets an error status', async () => {
    async function* batches(): AsyncGenerator<never[]> {
      yield* [];
      throw new Error('query failed');
    }
    await expect(csvStream(DEVICES, ['id'], batches())).rejects.toThrow('query failed');
  });
});
