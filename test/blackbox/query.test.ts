// §6 the query language, on /ws/v1/devices/inventory against a fixed fleet.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, deviceId, q, type Server, startServer } from './harness.js';

let server: Server;
let alice: Auth;
let bob: Auth;
let allJob = 0;
const nameOfDevice = new Map<string, string>();

const FLEET: Record<string, Record<string, unknown>> = {
  alpha: {
    group: '/NorthWest',
    tags: ['sensor', 'important'],
    health_status: 'error',
    signal_percent: 10,
    vendor_id: 0xfe000002,
    signal_strength: -85,
  },
  beta: {
    group: '/NorthWest/Seattle',
    tags: ['sensor'],
    health_status: 'warning',
    signal_percent: 50,
    signal_quality: 2.5,
  },
  gamma: { group: '/NorthWestern', tags: ['important'], health_status: 'normal', signal_percent: 15 },
  delta: { group: '/test', tags: [] },
  eps: { group: '/test/leaf', tags: ['ns-thing'], signal_percent: 100 },
  zeta: { group: '/testing/leaf', tags: ['Sensor2'], restricted_status: 'disabled' },
  "isn't": { description: '' },
  Theta: { group: '/other/test', description: 'has text', health_status: 'warning' },
  Émile: { group: '/Ünï/x', tags: ['Über'] },
};
const ALL = Object.keys(FLEET);

beforeAll(async () => {
  server = await startServer();
  [alice, bob] = await Promise.all([server.user('q-a', 'qalice'), server.user('q-b', 'qbob')]);
  server.defaultAuth = alice;
  const list = Object.entries(FLEET).map(([name, fields]) => ({ id: deviceId('9'), name, ...fields }));
  expect((await server.post('/ws/v1/devices/inventory', list)).status).toBe(201);
  // another account's look-alike must never match
  const theirs = await server.post(
    '/ws/v1/devices/inventory',
    { id: deviceId('8'), name: 'alpha', group: '/NorthWest', tags: ['sensor'] },
    { auth: bob },
  );
  expect(theirs.status).toBe(201);
  // one job per device (description = the device's name) and one job on all of them
  for (const device of list) {
    nameOfDevice.set(device.id, device.name);
    const j = await server.post('/ws/v1/jobs/inventory', {
      job_type: 'reboot',
      description: device.name,
      targets: { devices: [device.id] },
    });
    expect(j.status).toBe(201);
  }
  const all = await server.post('/ws/v1/jobs/inventory', {
    job_type: 'reboot',
    description: 'all',
    targets: { all: true },
  });
  expect(all.body.target_count).toBe(list.length);
  allJob = all.body.id;
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function names(query: string): Promise<string[]> {
  const r = await server.get(`/ws/v1/devices/inventory?query=${q(query)}`);
  expect(r.status, `${query}: ${r.text}`).toBe(200);
  return r.body.list.map((d: { name: string }) => d.name).sort();
}
function sorted(...list: string[]): string[] {
  return [...list].sort();
}
function except(...list: string[]): string[] {
  return ALL.filter((n) => !list.includes(n)).sort();
}
async function rejects(query: string): Promise<string> {
  const r = await server.get(`/ws/v1/devices/inventory?query=${q(query)}`);
  expect(r.status, `${query}: ${r.text}`).toBe(400);
  expect(r.body).toEqual({ error_status: 400, error_message: expect.any(String) });
  return r.body.error_message;
}

describe('§6 reference examples', () => {
  it('complex queries', async () => {
    expect(
      await names(
        "group startsWith '/NorthWest' and (connection_status = 'disconnected' or signal_percent < 20)",
      ),
    ).toEqual(sorted('alpha', 'beta', 'gamma'));
    expect(
      await names("tags = 'important' and (health_status = 'error' or health_status = 'warning')"),
    ).toEqual(['alpha']);
  });

  it('group queries compare whole segments', async () => {
    expect(await names("group = '/test'")).toEqual(['delta']);
    expect(await names("group = 'test'")).toEqual(['delta']);
    expect(await names("group startsWith 'test/'")).toEqual(sorted('delta', 'eps'));
    expect(await names("group startsWith '/test/'")).toEqual(sorted('delta', 'eps'));
    expect(await names("group startsWith 'test'")).toEqual(sorted('delta', 'eps', 'zeta'));
    expect(await names("group endsWith '/leaf'")).toEqual(sorted('eps', 'zeta'));
    expect(await names("group startsWith '/NorthWest'")).toEqual(sorted('alpha', 'beta', 'gamma'));
    expect(await names("group startsWith '/NorthWest/'")).toEqual(sorted('alpha', 'beta'));
    expect(await names("group startsWith '/northwest/'")).toEqual(sorted('alpha', 'beta'));
    expect(await names("group contains 'west'")).toEqual(sorted('alpha', 'beta', 'gamma'));
    expect(await names("group contains 'other/te'")).toEqual(['Theta']);
    expect(await names("group = '/NORTHWEST/seattle'")).toEqual(['beta']);
  });

  it('tag queries', async () => {
    expect(await names("tags = 'sensor'")).toEqual(sorted('alpha', 'beta'));
    expect(await names("tags = 'SENSOR'")).toEqual(sorted('alpha', 'beta'));
    expect(await names("tags <> 'sensor'")).toEqual(except('alpha', 'beta'));
    expect(await names("tags contains 'ns'")).toEqual(sorted('alpha', 'beta', 'eps', 'zeta'));
    expect(await names("tags startsWith 'sens'")).toEqual(sorted('alpha', 'beta', 'zeta'));
    expect(await names("tags endsWith 'or'")).toEqual(sorted('alpha', 'beta'));
    expect(await names('tags = empty')).toEqual(sorted('delta', "isn't", 'Theta'));
  });
});

describe('§6 language', () => {
  it('keywords, operators and field names are case-insensitive; text compares fold ASCII only', async () => {
    expect(await names("NAME = 'ALPHA'")).toEqual(['alpha']);
    expect(await names("name STARTSWITH 'AL' AnD Health_Status = 'error'")).toEqual(['alpha']);
    expect(await names("name = 'émile'")).toEqual([]);
    expect(await names("name = 'ÉMILE'")).toEqual(['Émile']);
    expect(await names("name = 'émile'  or name = 'Émile'")).toEqual(['Émile']);
    expect(await names("tags = 'über'")).toEqual([]);
    expect(await names("tags = 'ÜBER'")).toEqual(['Émile']);
    expect(await names("group startsWith '/ünï'")).toEqual([]);
    // relative text comparison on folded text, rest by code point
    expect(await names("name > 'gamma'")).toEqual(sorted("isn't", 'Theta', 'zeta', 'Émile'));
    expect(await names("name <= 'BETA'")).toEqual(sorted('alpha', 'beta'));
    expect(await names("name >= 'T'")).toEqual(sorted('Theta', 'zeta', 'Émile'));
  });

  it('quotes, numbers (sign, fraction, hex)', async () => {
    expect(await names("name = 'isn''t'")).toEqual(["isn't"]);
    expect(await names("name contains ''''")).toEqual(["isn't"]);
    expect(await names('signal_strength = -85')).toEqual(['alpha']);
    expect(await names('signal_quality = 2.5')).toEqual(['beta']);
    expect(await names('signal_quality > 2')).toEqual(['beta']);
    expect(await names('signal_percent = 0x0A')).toEqual(['alpha']);
    expect(await names('vendor_id = 0xFE000002')).toEqual(['alpha']);
    expect(await names('vendor_id = 4261412866')).toEqual(['alpha']);
    expect(await names('signal_percent >= 15 and signal_percent <= 50')).toEqual(sorted('beta', 'gamma'));
    expect(await names('signal_percent > 10')).toEqual(sorted('beta', 'gamma', 'eps'));
  });

  it('precedence: not over and over or; parentheses', async () => {
    expect(await names("name = 'alpha' or name = 'beta' and health_status = 'normal'")).toEqual(['alpha']);
    expect(await names("(name = 'alpha' or name = 'beta') and health_status = 'warning'")).toEqual(['beta']);
    expect(await names("not name = 'alpha' and signal_percent < 20")).toEqual(['gamma']);
    expect(await names("not (name = 'alpha' or signal_percent < 100)")).toEqual(
      except('alpha', 'beta', 'gamma'),
    );
    expect(await names("not not name = 'alpha'")).toEqual(['alpha']);
  });

  it('missing values fail every condition except = empty and <>; not is plain negation', async () => {
    const withSignal = ['alpha', 'beta', 'gamma', 'eps'];
    expect(await names('signal_percent < 20')).toEqual(sorted('alpha', 'gamma'));
    expect(await names('signal_percent <> 5')).toEqual(ALL.sort());
    expect(await names('signal_percent <> 10')).toEqual(except('alpha'));
    expect(await names('not signal_percent < 20')).toEqual(except('alpha', 'gamma'));
    expect(await names('signal_percent = empty')).toEqual(except(...withSignal));
    expect(await names('signal_percent <> empty')).toEqual(sorted(...withSignal));
    expect(await names("group <> '/test'")).toEqual(except('delta'));
    expect(await names('group = empty')).toEqual(["isn't"]);
    expect(await names('group <> empty')).toEqual(except("isn't"));
    expect(await names("group contains 'e'")).not.toContain("isn't");
    expect(await names("not group contains 'e'")).toContain("isn't");
    // empty text is empty too
    expect(await names('description = empty')).toEqual(except('Theta'));
    expect(await names("description <> 'has text'")).toEqual(except('Theta'));
    // null descriptions fail a comparison (whether empty text '' is a value is not fixed by §6)
    expect((await names("description < 'zzz'")).filter((n) => n !== "isn't")).toEqual(['Theta']);
    expect(await names('health_status = empty')).toEqual([]);
    expect(await names("health_status = 'unknown'")).toEqual(
      sorted('delta', 'eps', 'zeta', "isn't", 'Émile'),
    );
    expect(await names("restricted_status <> 'unrestricted'")).toEqual(['zeta']);
    expect(await names("connection_status = 'connected'")).toEqual([]);
    expect(await names('last_connect > -30d')).toEqual([]);
    expect(await names('last_connect = empty')).toEqual(ALL.sort());
    expect(await names('not last_connect < +1d')).toEqual(ALL.sort());
  });

  it('an empty or absent query matches everything; whitespace only too', async () => {
    expect(await names('')).toEqual(ALL.sort());
    const absent = await server.get('/ws/v1/devices/inventory');
    expect(absent.body.count).toBe(ALL.length);
  });

  it('enumerated fields take only their values', async () => {
    await rejects("health_status = 'fine'");
    await rejects("connection_status = 'online'");
    await rejects("restricted_status = 'open'");
    await rejects("health_status <> 'Normal2'");
  });

  it('a value of the wrong kind is 400', async () => {
    await rejects("signal_percent = '5'");
    await rejects('name = 5');
    await rejects("vendor_id = 'FE'");
    await rejects('tags = 5');
    await rejects('group = 1');
    await rejects("last_connect > 'yesterday'");
    await rejects('last_connect > 5');
  });

  it('an operator the field does not take is 400', async () => {
    await rejects("signal_percent contains '5'");
    await rejects('signal_percent startsWith 5');
    await rejects("tags < 'x'");
    await rejects("group > '/a'");
    await rejects("health_status startsWith 'e'");
  });

  it('an unknown field is 400', async () => {
    await rejects("colour = 'red'");
    await rejects("job_status = 'new'");
  });

  it('a query that does not parse: 400 with the 1-based position and what was expected', async () => {
    const msg = await rejects("name equals 'x'");
    expect(msg).toBe(
      "Invalid query at position 6: expected an operator (=, <>, <, <=, >, >=, startsWith, endsWith, contains) but found 'equals'",
    );
    expect(await rejects("name = 'x' and")).toMatch(/^Invalid query at position 15: /);
    expect(await rejects("(name = 'x'")).toMatch(/^Invalid query at position \d+: expected/);
    expect(await rejects("name = 'unterminated")).toMatch(/^Invalid query at position \d+: /);
    expect(await rejects('= 5')).toMatch(/^Invalid query at position 1: /);
    await rejects("name = 'x' or or name = 'y'");
    await rejects("name = 'x')");
  });

  it('limits: longer than 4 KiB or nested deeper than 64 is 400', async () => {
    const clause = "name = 'alpha'";
    let long = clause;
    while (long.length <= 4096) long += ` or ${clause}`;
    await rejects(long);
    let fits = clause;
    while (fits.length + clause.length + 4 < 4000) fits += ` or ${clause}`;
    expect(await names(fits)).toEqual(['alpha']);
    // exactly 4 KiB is accepted, one byte more is not
    const exact = `${clause}${' '.repeat(4096 - clause.length)}`;
    expect(exact.length).toBe(4096);
    expect(await names(exact)).toEqual(['alpha']);
    await rejects(`${exact} `);
    const deep = `${'('.repeat(65)}${clause}${')'.repeat(65)}`;
    await rejects(deep);
    const ok = `${'('.repeat(60)}${clause}${')'.repeat(60)}`;
    expect(await names(ok)).toEqual(['alpha']);
    const nots = `${'not '.repeat(100)}${clause}`;
    await rejects(nots);
  });

  it('values are data: SQL-looking input matches nothing and breaks nothing', async () => {
    expect(await names("name = 'x'' or 1=1 --'")).toEqual([]);
    expect(await names("name = 'alpha''; drop table devices; --'")).toEqual([]);
    expect(await names("name contains '%'")).toEqual([]);
    expect(await names("name contains '_'")).toEqual([]);
    expect(await names("name startsWith '%a'")).toEqual([]);
    expect(await names('')).toEqual(ALL.sort());
  });
});

describe('§6 negation laws', () => {
  it('<> is the exact complement of =, and not is the exact complement of any condition', async () => {
    const text = ["'alpha'", "'/test'", "'sensor'", "'test'", "''", "'has text'", "'e'", "'a'", 'empty'];
    const cases: string[] = [];
    for (const field of ['name', 'group', 'tags', 'description']) {
      for (const op of ['=', 'contains', 'startsWith', 'endsWith', '<', '>=']) {
        for (const value of text) cases.push(`${field} ${op} ${value}`);
      }
    }
    for (const field of ['signal_percent', 'signal_strength', 'vendor_id']) {
      for (const op of ['=', '<', '>=', '<=']) {
        for (const value of ['10', '-85', '0', '50', '0xFE000002', 'empty'])
          cases.push(`${field} ${op} ${value}`);
      }
    }
    const failures: string[] = [];
    for (const base of cases) {
      const r = await server.get(`/ws/v1/devices/inventory?query=${q(base)}`);
      if (r.status === 400) continue; // an operator the field does not take, or empty with <
      expect(r.status, base).toBe(200);
      const complement = except(...r.body.list.map((d: { name: string }) => d.name));
      const negations = [`not ${base}`, `not (${base})`];
      if (base.includes(' = ')) negations.push(base.replace(' = ', ' <> '));
      for (const negation of negations) {
        const got = await names(negation);
        if (JSON.stringify(got) !== JSON.stringify(complement)) {
          failures.push(`${negation}: expected ${JSON.stringify(complement)}, got ${JSON.stringify(got)}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it('job targets and jobs filter on device fields exactly as the device list does', async () => {
    const cases: string[] = [];
    for (const field of ['name', 'group', 'tags', 'description']) {
      for (const op of ['=', '<>', 'contains', 'startsWith', 'endsWith', '<', '>=']) {
        for (const value of ["'alpha'", "'/test'", "'sensor'", "'test'", "'e'", "''", 'empty']) {
          cases.push(`${field} ${op} ${value}`);
        }
      }
    }
    for (const field of ['signal_percent', 'signal_strength', 'vendor_id', 'health_status']) {
      for (const op of ['=', '<>', '<', '>=']) {
        for (const value of ['10', '-85', '0xFE000002', 'empty', "'warning'"])
          cases.push(`${field} ${op} ${value}`);
      }
    }
    const failures: string[] = [];
    for (const base of cases) {
      for (const query of [base, `not ${base}`]) {
        const devices = await server.get(`/ws/v1/devices/inventory?query=${q(query)}`);
        const targets = await server.get(`/ws/v1/jobs/${allJob}/targets?query=${q(query)}`);
        // in a job query `description` is the job's: the device's is device.description
        const jobQuery = `description <> 'all' and (${query.replace('description', 'device.description')})`;
        const jobs = await server.get(`/ws/v1/jobs/inventory?query=${q(jobQuery)}`);
        if (devices.status !== 200) {
          if (targets.status !== devices.status || jobs.status !== devices.status) {
            failures.push(
              `${query}: devices ${devices.status}, targets ${targets.status}, jobs ${jobs.status}`,
            );
          }
          continue;
        }
        const want = JSON.stringify(devices.body.list.map((d: { name: string }) => d.name).sort());
        const viaTargets = JSON.stringify(
          (targets.body?.list ?? []).map((t: { device_id: string }) => nameOfDevice.get(t.device_id)).sort(),
        );
        const viaJobs = JSON.stringify(
          (jobs.body?.list ?? []).map((j: { description: string }) => j.description).sort(),
        );
        if (viaTargets !== want) failures.push(`targets ${query}: expected ${want}, got ${viaTargets}`);
        if (viaJobs !== want) failures.push(`jobs ${jobQuery}: expected ${want}, got ${viaJobs}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('not is plain negation for empty text too', async () => {
    // "isn't" has description '' (empty text): it fails `description endsWith 'xyz'`, so `not` holds
    expect(await names("description endsWith 'xyz'")).toEqual([]);
    expect(await names("not description endsWith 'xyz'")).toEqual(ALL.sort());
  });

  it('keywords and operators in any case; hex in any case', async () => {
    expect(await names("NOT name = 'alpha' AND name STARTSWITH 'al'")).toEqual([]);
    expect(await names("name startswith 'AL' Or name CONTAINS 'ETA'")).toEqual(
      sorted('alpha', 'beta', 'zeta', 'Theta'),
    );
    expect(await names('group = EMPTY')).toEqual(["isn't"]);
    expect(await names('signal_percent = 0x0a')).toEqual(['alpha']);
    expect(await names('signal_percent = 0X0A')).toEqual(['alpha']);
  });
});

describe('§3 never a 500', () => {
  it('any query, orderby, size or cursor text answers 200 or 400 with the error body', async () => {
    const token = fc.constantFrom(
      'name',
      'group',
      'tags',
      'signal_percent',
      'health_status',
      'last_connect',
      'device.id',
      'id',
      '=',
      '<>',
      '<',
      '>=',
      'startsWith',
      'contains',
      'and',
      'or',
      'not',
      '(',
      ')',
      "'x'",
      "'it''s'",
      "'",
      '5',
      '-2.5',
      '0x1F',
      '-10s',
      '+1d',
      'empty',
      "'error'",
      "'/a/b'",
      '',
      ' ',
      '\\',
      '%',
      '_',
      '"',
      ';',
      '--',
      'é',
      '\u0000',
    );
    const text = fc.array(token, { maxLength: 12 }).map((t) => t.join(' '));
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          query: text,
          orderby: fc.oneof(text, fc.constantFrom('name asc', 'id', 'tags desc')),
          size: fc.string({ maxLength: 6 }),
          cursor: fc.option(fc.string({ maxLength: 30 })),
        }),
        async ({ query, orderby, size, cursor }) => {
          const params = new URLSearchParams({ query, orderby, size });
          if (cursor !== null) params.set('cursor', cursor);
          for (const path of ['/ws/v1/devices/inventory', '/ws/v1/jobs/inventory']) {
            const r = await server.get(`${path}?${params}`);
            expect([200, 400], `${path}?${params}: ${r.text}`).toContain(r.status);
            if (r.status === 400)
              expect(r.body).toEqual({ error_status: 400, error_message: expect.any(String) });
          }
        },
      ),
      { numRuns: 150, seed: 20261128 },
    );
  });
});
