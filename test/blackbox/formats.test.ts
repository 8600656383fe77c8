// §5 formats: XML (inventory.xml, Accept) and CSV (bulk, fields); §3 null rendering.
import { parse as parseCsv } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Auth,
  csvLines,
  deviceId,
  ISO_MS,
  JOB_FIELDS,
  LISTED_JOB_FIELDS,
  q,
  type Server,
  startServer,
} from './harness.js';

let server: Server;
let alice: Auth;
let empty: Auth;
let big: Auth;
const devIds: string[] = [];
const jobIds: number[] = [];
const tricky = 'comma, "quote" and\r\nnewline; ünïcode ✓';

const xml = new XMLParser({
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => ['job', 'device', 'target'].includes(name),
});

beforeAll(async () => {
  server = await startServer();
  [alice, empty, big] = await Promise.all([
    server.user('fmt-a', 'falice'),
    server.user('fmt-b', 'fempty'),
    server.user('fmt-c', 'fbig'),
  ]);
  server.defaultAuth = alice;
  devIds.push(deviceId('A'), deviceId('A'));
  const r = await server.post('/ws/v1/devices/inventory', [
    { id: devIds[0], name: 'x<&>y', tags: ['sensor', 'a,b'], group: '/G' },
    { id: devIds[1] },
  ]);
  expect(r.status).toBe(201);
  for (const description of [tricky, 'plain', 'third']) {
    const j = await server.post('/ws/v1/jobs/inventory', {
      job_type: 'reboot',
      description,
      targets: { devices: devIds },
    });
    expect(j.status).toBe(201);
    jobIds.push(j.body.id);
  }
  expect((await server.put(`/ws/v1/jobs/cancel/${jobIds[2]}`)).status).toBe(200);
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

const PROLOGUE = '<?xml version="1.0" encoding="UTF-8"?>';

describe('§5 XML', () => {
  it('inventory.xml: exact prologue, <result><count><size><list><job> with one element per field', async () => {
    const r = await server.get('/ws/v1/jobs/inventory.xml');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/xml/);
    expect(r.text.startsWith(PROLOGUE)).toBe(true);
    expect(XMLValidator.validate(r.text)).toBe(true);
    const body = r.text.slice(PROLOGUE.length).trim();
    expect(body.startsWith('<result><count>')).toBe(true);
    expect(body.endsWith('</list></result>')).toBe(true);
    const doc = xml.parse(r.text);
    expect(Object.keys(doc).filter((k) => k !== '?xml')).toEqual(['result']);
    const result = doc.result;
    expect(Object.keys(result)).toEqual(['count', 'size', 'list']);
    expect(result.count).toBe('3');
    expect(result.size).toBe('1000');
    const jobs = result.list.job;
    expect(jobs).toHaveLength(3);
    const json = await server.get('/ws/v1/jobs/inventory');
    jobs.forEach((job: Record<string, string>, i: number) => {
      expect(Object.keys(job)).toEqual([...LISTED_JOB_FIELDS]);
      const j = json.body.list[i];
      // XML parsers normalise a raw CR LF to LF (XML 1.0 §2.11), so compare with line ends normalised
      const norm = (v: string) => v.replace(/\r\n?/g, '\n');
      for (const f of LISTED_JOB_FIELDS)
        expect(norm(job[f] ?? ''), f).toBe(norm(j[f] === null ? '' : String(j[f])));
    });
    // a null is an empty element
    const open = jobs.find((j: Record<string, string>) => j.id === String(jobIds[0]));
    expect(open.job_completion_time).toBe('');
    expect(open.description.replace(/\r\n?/g, '\n')).toBe(tricky.replace(/\r\n/g, '\n'));
    const canceled = jobs.find((j: Record<string, string>) => j.id === String(jobIds[2]));
    expect(canceled.job_completion_time).toMatch(ISO_MS);
  });

  it('cursor and next_uri elements when more follow, before list; next_uri usable', async () => {
    const r = await server.get('/ws/v1/jobs/inventory.xml?size=2');
    const body = r.text.slice(PROLOGUE.length).trim();
    expect(body).toMatch(
      /^<result><count>2<\/count><size>2<\/size><cursor>[^<]+<\/cursor><next_uri>[^<]+<\/next_uri><list><job>/,
    );
    expect(XMLValidator.validate(r.text)).toBe(true);
    const doc = xml.parse(r.text);
    const next = doc.result.next_uri as string;
    expect(next.startsWith('/ws/v1/jobs/inventory')).toBe(true);
    const page2 = await server.get(next, { headers: { accept: 'application/xml' } });
    expect(page2.status).toBe(200);
    const p2 = xml.parse(page2.text);
    expect(p2.result.count).toBe('1');
    expect(p2.result.list.job[0].id).toBe(String(jobIds[0]));
    expect(p2.result.cursor).toBeUndefined();
    expect(p2.result.next_uri).toBeUndefined();
  });

  it('Accept: application/xml on /inventory gives the same document', async () => {
    const a = await server.get(`/ws/v1/jobs/inventory.xml?query=${q("description <> 'plain'")}`);
    const b = await server.get(`/ws/v1/jobs/inventory?query=${q("description <> 'plain'")}`, {
      headers: { accept: 'application/xml' },
    });
    expect(b.status).toBe(200);
    expect(b.headers.get('content-type')).toMatch(/xml/);
    expect(xml.parse(b.text)).toEqual(xml.parse(a.text));
    expect(b.text.startsWith(PROLOGUE)).toBe(true);
  });

  it('an empty page is still a full document', async () => {
    const r = await server.get('/ws/v1/jobs/inventory.xml', { auth: empty });
    const doc = xml.parse(r.text);
    expect(doc.result.count).toBe('0');
    expect(r.text).toMatch(/<list\s*\/>|<list><\/list>/);
  });

  it('devices use <device>, targets <target>; a tags list is compact JSON text', async () => {
    const d = await server.get('/ws/v1/devices/inventory', { headers: { accept: 'application/xml' } });
    expect(d.status).toBe(200);
    expect(d.text.startsWith(PROLOGUE)).toBe(true);
    const devices = xml.parse(d.text).result.list.device;
    expect(devices).toHaveLength(2);
    const first = devices.find((x: Record<string, string>) => x.id === devIds[0]);
    expect(first.tags).toBe('["sensor","a,b"]');
    expect(first.name).toBe('x<&>y');
    const second = devices.find((x: Record<string, string>) => x.id === devIds[1]);
    expect(second.name).toBe('');
    const t = await server.get(`/ws/v1/jobs/${jobIds[0]}/targets`, {
      headers: { accept: 'application/xml' },
    });
    expect(t.status).toBe(200);
    const targets = xml.parse(t.text).result.list.target;
    expect(targets).toHaveLength(2);
    expect(targets[0].status).toBe('queued');
  });

  it('a bad parameter on inventory.xml is still the JSON error body 400', async () => {
    const r = await server.get('/ws/v1/jobs/inventory.xml?size=0');
    expect(r.status).toBe(400);
  });
});

describe('§5 CSV', () => {
  it('bulk: CRLF, header of the 13 fields, a row per job, quotes doubled, null an empty cell', async () => {
    const r = await server.get('/ws/v1/jobs/bulk');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = r.text.split('\r\n');
    expect(lines[0]).toBe(JOB_FIELDS.join(','));
    expect(r.text.replace(/\r\n/g, '')).not.toContain('\n'); // no bare LF
    expect(r.text).toContain('"comma, ""quote"" and\r\nnewline; ünïcode ✓"');
    const rows: string[][] = parseCsv(r.text, { relax_column_count: false });
    expect(rows[0]).toEqual([...JOB_FIELDS]);
    expect(rows).toHaveLength(4);
    const json = await server.get('/ws/v1/jobs/inventory');
    const byId = new Map(rows.slice(1).map((row) => [row[0], row]));
    for (const j of json.body.list) {
      const row = byId.get(String(j.id));
      expect(row).toBeDefined();
      JOB_FIELDS.forEach((f, i) => {
        expect(row?.[i], f).toBe(j[f] === null ? '' : String(j[f]));
      });
    }
    expect(byId.get(String(jobIds[0]))?.[3 + 2]).toBe(tricky);
  });

  it('query and orderby apply; the header is there when nothing matches', async () => {
    const r = await server.get(
      `/ws/v1/jobs/bulk?query=${q("job_status = 'canceled'")}&orderby=${q('id asc')}`,
    );
    const rows: string[][] = parseCsv(r.text);
    expect(rows.map((row) => row[0])).toEqual(['id', String(jobIds[2])]);
    const none = await server.get(`/ws/v1/jobs/bulk?query=${q('id < 0')}`);
    expect(none.status).toBe(200);
    expect(csvLines(none.text)).toEqual([JOB_FIELDS.join(',')]);
    const other = await server.get('/ws/v1/jobs/bulk', { auth: empty });
    expect(csvLines(other.text)).toEqual([JOB_FIELDS.join(',')]);
    const asc = await server.get(`/ws/v1/jobs/bulk?orderby=${q('id asc')}&fields=id`);
    expect(csvLines(asc.text)).toEqual(['id', ...jobIds.map(String)]);
    const dflt = await server.get('/ws/v1/jobs/bulk?fields=id');
    expect(csvLines(dflt.text)).toEqual(['id', ...[...jobIds].reverse().map(String)]);
  });

  it('fields picks and orders columns; an unknown field is 400', async () => {
    const r = await server.get(`/ws/v1/jobs/bulk?fields=job_status,id&query=${q(`id = ${jobIds[2]}`)}`);
    expect(csvLines(r.text)).toEqual(['job_status,id', `canceled,${jobIds[2]}`]);
    const bad = await server.get('/ws/v1/jobs/bulk?fields=id,colour');
    expect(bad.status).toBe(400);
    expect(bad.body).toEqual({ error_status: 400, error_message: expect.any(String) });
    expect((await server.get(`/ws/v1/jobs/bulk?query=${q('id equals 1')}`)).status).toBe(400);
    expect((await server.get(`/ws/v1/jobs/bulk?orderby=colour`)).status).toBe(400);
  });

  it('devices bulk: list values as compact JSON; targets/bulk', async () => {
    const r = await server.get(`/ws/v1/devices/bulk?fields=id,tags,name,group&orderby=${q('id asc')}`);
    expect(r.status).toBe(200);
    const rows: string[][] = parseCsv(r.text);
    expect(rows[0]).toEqual(['id', 'tags', 'name', 'group']);
    expect(rows[1]).toEqual([devIds[0], '["sensor","a,b"]', 'x<&>y', '/G']);
    expect(rows[2]?.[0]).toBe(devIds[1]);
    expect(rows[2]?.[2]).toBe('');
    expect((await server.get('/ws/v1/devices/bulk?fields=id,colour')).status).toBe(400);

    const t = await server.get(`/ws/v1/jobs/${jobIds[0]}/targets/bulk`);
    expect(t.status).toBe(200);
    const trows: string[][] = parseCsv(t.text);
    expect(trows[0]).toContain('device_id');
    expect(trows[0]).toContain('status');
    expect(trows).toHaveLength(3);
    const col = trows[0]?.indexOf('device_id') ?? -1;
    expect(trows.slice(1).map((row) => row[col])).toEqual([...devIds].sort());
  });
});

describe('§5 more than one page', () => {
  it('inventory pages by 1000 at most; bulk CSV holds every job, without paging', async () => {
    const [dev] = [deviceId('B')];
    expect((await server.post('/ws/v1/devices/inventory', { id: dev }, { auth: big })).status).toBe(201);
    const total = 1003;
    for (let i = 0; i < total; i += 50) {
      const batch = Array.from({ length: Math.min(50, total - i) }, () =>
        server.post(
          '/ws/v1/jobs/inventory',
          { job_type: 'reboot', targets: { devices: [dev] } },
          { auth: big },
        ),
      );
      for (const r of await Promise.all(batch)) expect(r.status).toBe(201);
    }
    const first = await server.get('/ws/v1/jobs/inventory', { auth: big });
    expect(first.body.count).toBe(1000);
    expect(first.body.size).toBe(1000);
    expect(first.body.next_uri).toBeDefined();
    const second = await server.get(first.body.next_uri, { auth: big });
    expect(second.body.count).toBe(3);
    const ids = [...first.body.list, ...second.body.list].map((j: { id: number }) => j.id);
    expect(new Set(ids).size).toBe(total);

    const csv = await server.get('/ws/v1/jobs/bulk?fields=id', { auth: big });
    const rows: string[][] = parseCsv(csv.text);
    expect(rows).toHaveLength(total + 1);
    expect(rows.slice(1).map((r) => Number(r[0]))).toEqual(ids);
    const sized = await server.get('/ws/v1/jobs/bulk?fields=id&size=10', { auth: big });
    if (sized.status === 200) expect(parseCsv(sized.text)).toHaveLength(total + 1);
  });
});

describe('§1 SIGTERM', () => {
  it('finishes the in-flight request, then stops accepting and exits 0', async () => {
    const auth = `Basic ${Buffer.from(`${big.user}:${big.password}`).toString('base64')}`;
    const res = await fetch(`${server.base}/ws/v1/jobs/bulk`, { headers: { authorization: auth } });
    expect(res.status).toBe(200);
    const stopping = server.stop();
    const text = await res.text();
    expect(parseCsv(text)).toHaveLength(1004);
    expect(await stopping).toBe(0);
    await expect(fetch(`${server.base}/healthz`)).rejects.toThrow();
  });
});
