import { describe, expect, it } from 'vitest';
import type { Device } from '../../src/model/device.js';
import { matchesDevice, matchesJob, matchesTarget, parseQuery } from '../../src/query/index.js';
import { device, job, NOW, target } from './fixtures.js';

interface DeviceCase {
  query: string;
  matches: Partial<Device>[];
  misses: Partial<Device>[];
}

const MINUTE = 60_000;

const deviceCases: DeviceCase[] = [
  // The reference page's examples.
  {
    query: "group startsWith '/NorthWest' and (connection_status = 'disconnected' or signal_percent < 20)",
    matches: [
      { group: '/NorthWest', connection_status: 'disconnected' },
      { group: '/NorthWest/Seattle', connection_status: 'connected', signal_percent: 10 },
      { group: '/northwest/seattle/dock', connection_status: 'connected', signal_percent: 19.5 },
      { group: '/NorthWestern', connection_status: 'disconnected' },
    ],
    misses: [
      { group: '/NorthWest', connection_status: 'connected', signal_percent: 50 },
      { group: '/NorthWest', connection_status: 'connected', signal_percent: 20 },
      { group: '/NorthWest', connection_status: 'connected', signal_percent: null },
      { group: '/SouthWest', connection_status: 'disconnected' },
      { group: '/a/NorthWest', connection_status: 'disconnected' },
      { group: '', connection_status: 'disconnected', signal_percent: 5 },
    ],
  },
  {
    query: "tags = 'important' and (health_status = 'error' or health_status = 'warning')",
    matches: [
      { tags: ['important'], health_status: 'error' },
      { tags: ['sensor', 'IMPORTANT'], health_status: 'warning' },
    ],
    misses: [
      { tags: ['important'], health_status: 'normal' },
      { tags: ['unimportant', 'important!'], health_status: 'error' },
      { tags: [], health_status: 'error' },
    ],
  },
  {
    query: "group = '/test'",
    matches: [{ group: '/test' }, { group: '/TEST' }],
    misses: [{ group: '/test/sub' }, { group: '/testing' }, { group: '/a/test' }, { group: '' }],
  },
  {
    query: "group startsWith 'test/'",
    matches: [{ group: '/test' }, { group: '/test/sub' }, { group: '/Test/x/y' }],
    misses: [{ group: '/testing' }, { group: '/testing/x' }, { group: '/a/test' }, { group: '' }],
  },
  {
    query: "group startsWith 'test'",
    matches: [{ group: '/test' }, { group: '/testing' }, { group: '/test/sub' }, { group: '/Testing/x' }],
    misses: [{ group: '/a/test' }, { group: '/tes' }, { group: '/atest' }, { group: '' }],
  },
  {
    query: "group endsWith '/leaf'",
    matches: [{ group: '/leaf' }, { group: '/a/leaf' }, { group: '/a/b/LEAF' }],
    misses: [{ group: '/a/myleaf' }, { group: '/leaf/x' }, { group: '/leafy' }, { group: '' }],
  },
  {
    query: "tags = 'sensor'",
    matches: [{ tags: ['sensor'] }, { tags: ['x', 'SENSOR'] }],
    misses: [{ tags: ['sensors'] }, { tags: ['sens'] }, { tags: [] }],
  },
  {
    query: "tags <> 'sensor'",
    matches: [{ tags: [] }, { tags: ['sensors'] }, { tags: ['x', 'y'] }],
    misses: [{ tags: ['sensor'] }, { tags: ['a', 'Sensor'] }],
  },
  {
    query: "tags contains 'ns'",
    matches: [{ tags: ['sensor'] }, { tags: ['x', 'NS'] }],
    misses: [{ tags: ['sen', 'sx'] }, { tags: [] }],
  },
  {
    query: "tags startsWith 'sens'",
    matches: [{ tags: ['sensor'] }, { tags: ['x', 'SENSE'] }, { tags: ['sens'] }],
    misses: [{ tags: ['asens'] }, { tags: ['sen'] }, { tags: [] }],
  },
  {
    query: "tags endsWith 'or'",
    matches: [{ tags: ['sensor'] }, { tags: ['actuatOR', 'x'] }],
    misses: [{ tags: ['ore'] }, { tags: [] }],
  },
  // The contract's examples and edge cases.
  {
    query: "group startsWith '/NorthWest/'",
    matches: [{ group: '/NorthWest' }, { group: '/NorthWest/Seattle' }],
    misses: [{ group: '/NorthWestern' }, { group: '' }],
  },
  {
    query: 'signal_percent <> 5',
    matches: [{ signal_percent: null }, { signal_percent: 6 }, { signal_percent: 5.5 }],
    misses: [{ signal_percent: 5 }],
  },
  {
    query: "group <> '/test'",
    matches: [{ group: '' }, { group: '/test/sub' }, { group: '/testing' }],
    misses: [{ group: '/test' }, { group: '/Test' }],
  },
  {
    query: 'not signal_percent < 20',
    matches: [{ signal_percent: null }, { signal_percent: 20 }],
    misses: [{ signal_percent: 19 }, { signal_percent: -1 }],
  },
  {
    query: "name = 'isn''t'",
    matches: [{ name: "isn't" }, { name: "ISN'T" }],
    misses: [{ name: 'isnt' }, { name: "isn''t" }, { name: null }],
  },
  {
    query: 'vendor_id = 0xFE000002',
    matches: [{ vendor_id: 4_261_412_866 }],
    misses: [{ vendor_id: 0xfe000003 }, { vendor_id: null }],
  },
  {
    query: 'signal_strength < -80 and signal_quality >= 2.5',
    matches: [{ signal_strength: -85, signal_quality: 2.5 }],
    misses: [
      { signal_strength: -80, signal_quality: 3 },
      { signal_strength: -85, signal_quality: 2.4 },
    ],
  },
  {
    query: "device.id = '00000000-00000000-0004f3ff-ff0123ab'",
    matches: [{ id: '00000000-00000000-0004F3FF-FF0123AB' }],
    misses: [{ id: '00000000-00000000-0004F3FF-FF0123AC' }],
  },
  // Missing values and empty.
  {
    query: 'name = empty',
    matches: [{ name: null }, { name: '' }],
    misses: [{ name: ' ' }, { name: 'a' }],
  },
  { query: "name = ''", matches: [{ name: '' }], misses: [{ name: null }, { name: 'a' }] },
  { query: "name <> ''", matches: [{ name: null }, { name: 'a' }], misses: [{ name: '' }] },
  { query: 'name <> empty', matches: [{ name: 'a' }, { name: ' ' }], misses: [{ name: null }, { name: '' }] },
  { query: "name startsWith ''", matches: [{ name: '' }, { name: 'x' }], misses: [{ name: null }] },
  {
    query: "name < 'a'",
    matches: [{ name: '' }, { name: '0' }],
    misses: [{ name: null }, { name: 'a' }, { name: 'B' }],
  },
  { query: 'tags = empty', matches: [{ tags: [] }], misses: [{ tags: ['x'] }] },
  { query: 'group = empty', matches: [{ group: '' }], misses: [{ group: '/x' }] },
  { query: 'signal_percent = empty', matches: [{ signal_percent: null }], misses: [{ signal_percent: 0 }] },
  {
    query: 'not signal_percent = empty',
    matches: [{ signal_percent: 0 }],
    misses: [{ signal_percent: null }],
  },
  // Text: ASCII folding only, code point order, no wildcards.
  {
    query: "name = 'straße'",
    matches: [{ name: 'STRAßE' }, { name: 'Straße' }],
    misses: [{ name: 'STRASSE' }, { name: 'strasse' }],
  },
  { query: "name = 'É'", matches: [{ name: 'É' }], misses: [{ name: 'é' }, { name: 'e' }] },
  { query: "name = 'i'", matches: [{ name: 'I' }], misses: [{ name: 'İ' }, { name: 'ı' }] },
  {
    query: "name > '\uFFFD'",
    matches: [{ name: '😀' }, { name: '𝒜' }],
    misses: [{ name: '\uE000' }, { name: 'z' }, { name: '\uFFFD' }],
  },
  {
    query: "name < '\uE000'",
    matches: [{ name: 'z' }, { name: 'é' }],
    misses: [{ name: '😀' }, { name: '\uFFFD' }],
  },
  {
    query: "name < 'b'",
    matches: [{ name: 'A' }, { name: 'a' }, { name: 'ABC' }],
    misses: [{ name: 'B' }, { name: 'c' }],
  },
  { query: "name >= 'B'", matches: [{ name: 'b' }, { name: 'C' }, { name: 'é' }], misses: [{ name: 'a' }] },
  { query: "name contains '%'", matches: [{ name: 'a%c' }], misses: [{ name: 'abc' }] },
  { query: "name startsWith 'a_'", matches: [{ name: 'A_c' }], misses: [{ name: 'abc' }] },
  { query: "name endsWith '\\'", matches: [{ name: 'x\\' }], misses: [{ name: 'x' }] },
  { query: "name contains 'ß'", matches: [{ name: 'STRAßE' }], misses: [{ name: 'STRASSE' }] },
  {
    query: "health_status = 'ERROR'",
    matches: [{ health_status: 'error' }],
    misses: [{ health_status: 'warning' }],
  },
  // Group edge cases.
  { query: "group = ''", matches: [{ group: '' }], misses: [{ group: '/a' }] },
  { query: "group = '/'", matches: [{ group: '' }], misses: [{ group: '/a' }] },
  { query: "group <> ''", matches: [{ group: '/a' }], misses: [{ group: '' }] },
  { query: "group = 'test/'", matches: [{ group: '/test' }], misses: [{ group: '/test/x' }] },
  { query: "group startsWith '/'", matches: [{ group: '/a' }, { group: '/a/b' }], misses: [{ group: '' }] },
  { query: "group startsWith ''", matches: [{ group: '/a' }], misses: [{ group: '' }] },
  {
    query: "group endsWith 'leaf/'",
    matches: [{ group: '/a/leaf' }, { group: '/a/myleaf' }],
    misses: [{ group: '/leaf/a' }],
  },
  { query: "group endsWith '/'", matches: [{ group: '/a' }], misses: [{ group: '' }] },
  {
    query: "group contains 'a/l'",
    matches: [{ group: '/a/leaf' }, { group: '/xa/lb' }],
    misses: [{ group: '/a' }, { group: '' }],
  },
  { query: "group contains 'ST/'", matches: [{ group: '/test/x' }], misses: [{ group: '/test' }] },
  { query: "group startsWith 'ünï'", matches: [{ group: '/ünïcode' }], misses: [{ group: '/ÜNÏcode' }] },
  // Timestamps.
  {
    query: 'last_connect > -1h',
    matches: [{ last_connect: NOW - 10 * MINUTE }, { last_connect: NOW + MINUTE }],
    misses: [
      { last_connect: NOW - 120 * MINUTE },
      { last_connect: NOW - 60 * MINUTE },
      { last_connect: null },
    ],
  },
  {
    query: 'not last_connect > -1h',
    matches: [{ last_connect: null }, { last_connect: NOW - 120 * MINUTE }],
    misses: [{ last_connect: NOW }],
  },
  {
    query: "last_update < '2026-11-28T00:00:00Z'",
    matches: [{ last_update: Date.UTC(2026, 10, 27, 23, 59, 59, 999) }],
    misses: [{ last_update: Date.UTC(2026, 10, 28) }, { last_update: null }],
  },
  {
    query: "last_update >= '2026-11-28T01:00:00+01:00' and last_update < '2026-11-29'",
    matches: [{ last_update: Date.UTC(2026, 10, 28) }, { last_update: Date.UTC(2026, 10, 28, 23) }],
    misses: [{ last_update: Date.UTC(2026, 10, 27, 23) }, { last_update: Date.UTC(2026, 10, 29) }],
  },
  {
    query: 'last_disconnect <= -30d or last_disconnect >= +1d',
    matches: [{ last_disconnect: NOW - 30 * 24 * 60 * MINUTE }, { last_disconnect: NOW + 24 * 60 * MINUTE }],
    misses: [{ last_disconnect: NOW }, { last_disconnect: null }],
  },
  { query: 'last_connect = empty', matches: [{ last_connect: null }], misses: [{ last_connect: 0 }] },
  // Precedence.
  {
    query: "name = 'a' or name = 'b' and not type = 'x'",
    matches: [{ name: 'a', type: 'x' }, { name: 'b', type: 'y' }, { name: 'b' }],
    misses: [{ name: 'b', type: 'x' }, { name: 'c' }],
  },
  {
    query: "(name = 'a' or name = 'b') and not (type = 'x' or type = 'y')",
    matches: [{ name: 'a' }, { name: 'B', type: 'z' }],
    misses: [{ name: 'a', type: 'y' }, { name: 'c' }],
  },
];

describe('matchesDevice', () => {
  describe.each(deviceCases)('$query', ({ query, matches, misses }) => {
    const node = parseQuery(query, 'devices');
    if (node === null) throw new Error('blank test query');
    it.each(matches.map((fields) => [JSON.stringify(fields), fields]))('matches %s', (_, fields) => {
      expect(matchesDevice(node, device(fields), NOW)).toBe(true);
    });
    it.each(misses.map((fields) => [JSON.stringify(fields), fields]))('does not match %s', (_, fields) => {
      expect(matchesDevice(node, device(fields), NOW)).toBe(false);
    });
  });
});

describe('matchesJob', () => {
  const deviceA = device({
    id: '00000000-00000000-00000000-0000000A',
    name: 'a',
    signal_percent: 10,
    description: 'dev',
  });
  const deviceB = device({ id: '00000000-00000000-00000000-0000000B', name: 'b', signal_percent: 90 });
  const theJob = job({ id: 17, description: 'reboot the fleet', username: 'alice', job_type: 'reboot' });
  const targets = [
    { target: target({ device_id: deviceA.id }), device: deviceA },
    { target: target({ device_id: deviceB.id }), device: deviceB },
  ];
  const deleted = [
    { target: target({ device_id: deviceA.id, status: 'failed', message: 'device deleted' }), device: null },
  ];

  it.each([
    ["username = 'alice'", true],
    ["username = 'ALICE'", true],
    ["username = 'bob'", false],
    ["job_type = 'reboot'", true],
    ["job_type = 'send_message'", false],
    ['id > 0', true],
    ['id = 17', true],
    ['id = 18', false],
    ["description = 'reboot the fleet'", true],
    ["description = 'dev'", false],
    ["device.description = 'dev'", true],
    ["device.id = '00000000-00000000-00000000-0000000b'", true],
    ["device.id = '00000000-00000000-00000000-0000000c'", false],
    ["name = 'a' and signal_percent > 50", false],
    ["name = 'a' or signal_percent > 50", true],
    ["name = 'b' and signal_percent > 50 and job_status = 'in_progress'", true],
    ["name = 'b' and job_status = 'complete'", false],
    ["not name = 'a'", true],
    ["not (name = 'a' or name = 'b')", false],
    ['signal_percent = empty', false],
    ['job_submit_time > -2m and job_submit_time < -30s and job_completion_time = empty', true],
    ['target_count = 2 and progress_pending >= 2', true],
  ])('%s → %s', (query, expected) => {
    const node = parseQuery(query, 'jobs');
    if (node === null) throw new Error('blank test query');
    expect(matchesJob(node, theJob, targets, NOW)).toBe(expected);
  });

  it.each([
    ['name = empty', true],
    ['device.id = empty', true],
    ["name <> 'a'", true],
    ["name = 'a'", false],
    ["health_status = 'unknown'", false],
    ['health_status = empty', true],
    ['tags = empty and group = empty', true],
    ["username = 'alice' and signal_percent <> 10", true],
  ])('with a deleted device: %s → %s', (query, expected) => {
    const node = parseQuery(query, 'jobs');
    if (node === null) throw new Error('blank test query');
    expect(matchesJob(node, theJob, deleted, NOW)).toBe(expected);
  });
});

describe('matchesTarget', () => {
  const dev = device({ name: 'a', tags: ['sensor'] });
  const inProgress = target({
    status: 'in_progress',
    progress: 50,
    message: 'Flashing',
    start_time: NOW - MINUTE,
  });
  it.each([
    ["status = 'in_progress'", true],
    ["status = 'IN_PROGRESS' and name = 'a'", true],
    ["status = 'queued'", false],
    ['progress >= 50 and progress < 51', true],
    ["message contains 'flash'", true],
    ['end_time = empty and start_time > -2m', true],
    ["tags = 'sensor' and device_id = '00000000-00000000-0004f3ff-ff0123ab'", true],
  ])('%s → %s', (query, expected) => {
    const node = parseQuery(query, 'targets');
    if (node === null) throw new Error('blank test query');
    expect(matchesTarget(node, inProgress, dev, NOW)).toBe(expected);
  });

  it.each([
    ['id = empty', true],
    ["device_id = '00000000-00000000-0004F3FF-FF0123AB'", true],
    ["name <> 'a'", true],
    ["status = 'in_progress' and name = 'a'", false],
  ])('with a deleted device: %s → %s', (query, expected) => {
    const node = parseQuery(query, 'targets');
    if (node === null) throw new Error('blank test query');
    expect(matchesTarget(node, inProgress, null, NOW)).toBe(expected);
  });
});
