import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEVICE_FIELDS } from '../../src/model/device.js';
import { AppError } from '../../src/model/error.js';
import { JOB_FIELDS } from '../../src/model/job.js';
import {
  MAX_QUERY_DEPTH,
  MAX_QUERY_LENGTH,
  parseQuery,
  type Query,
  queryFields,
  type Resource,
} from '../../src/query/index.js';
import { parseIsoTimestamp } from '../../src/query/parser.js';
import { withoutOffsets } from './arbitraries.js';

const parse = (text: string, resource: Resource = 'devices'): Query => {
  const node = parseQuery(text, resource);
  if (node === null) throw new Error('blank query');
  return node;
};

const errorOf = (text: string, resource: Resource = 'devices'): string => {
  try {
    parseQuery(text, resource);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(400);
    return (error as AppError).message;
  }
  throw new Error(`${text} parsed`);
};

const condition = (text: string, resource: Resource = 'devices') => {
  const node = parse(text, resource);
  if (node.type !== 'condition') throw new Error(`${text} is not a condition`);
  return node;
};

describe('parseQuery', () => {
  it.each([[''], ['   '], ['\t\n'], [undefined]])('answers null for the blank query %j', (text) => {
    expect(parseQuery(text, 'jobs')).toBeNull();
  });

  it('builds a tree with not over and over or, and 0-based offsets', () => {
    expect(parse("name = 'a' or type = 'b' and not group = empty")).toEqual({
      type: 'or',
      offset: 0,
      operands: [
        {
          type: 'condition',
          offset: 0,
          field: { name: 'name', scope: 'device', kind: 'text', offset: 0 },
          operator: '=',
          value: { type: 'text', value: 'a', offset: 7 },
        },
        {
          type: 'and',
          offset: 14,
          operands: [
            {
              type: 'condition',
              offset: 14,
              field: { name: 'type', scope: 'device', kind: 'text', offset: 14 },
              operator: '=',
              value: { type: 'text', value: 'b', offset: 21 },
            },
            {
              type: 'not',
              offset: 29,
              operand: {
                type: 'condition',
                offset: 33,
                field: { name: 'group', scope: 'device', kind: 'group', offset: 33 },
                operator: '=',
                value: { type: 'empty', offset: 41 },
              },
            },
          ],
        },
      ],
    });
  });

  it('takes keywords, operators and field names in any case, and needs no spaces around symbols', () => {
    expect(
      withoutOffsets(parse("NAME STARTSWITH 'x' AND NOT Tags = EMPTY OR Health_Status<>'Error'")),
    ).toEqual(withoutOffsets(parse("name startsWith 'x' and not tags = empty or health_status <> 'error'")));
  });

  it('keeps parentheses as nesting: (a and b) and c is not a and b and c', () => {
    const nested = parse("(name = 'a' and name = 'b') and name = 'c'");
    expect(nested.type === 'and' && nested.operands.map((operand) => operand.type)).toEqual([
      'and',
      'condition',
    ]);
    const flat = parse("name = 'a' and name = 'b' and name = 'c'");
    expect(flat.type === 'and' && flat.operands.length).toBe(3);
  });

  it.each([
    ['-85', -85],
    ['2.5', 2.5],
    ['+3', 3],
    ['0x1F', 31],
    ['0X1f', 31],
    ['-0x10', -16],
    ['0xFE000002', 4_261_412_866],
    ['007', 7],
  ])('reads the number %s', (raw, value) => {
    expect(condition(`signal_strength = ${raw}`).value).toEqual({ type: 'number', value, raw, offset: 18 });
  });

  it.each([
    ['-10s', -10_000],
    ['-5m', -300_000],
    ['-2h', -7_200_000],
    ['-30d', -2_592_000_000],
    ['+1d', 86_400_000],
    ['-2H', -7_200_000],
  ])('reads the relative time %s', (raw, milliseconds) => {
    expect(condition(`last_update > ${raw}`).value).toEqual({
      type: 'relative_time',
      milliseconds,
      raw,
      offset: 14,
    });
  });

  it.each([
    ['2026-11-28T00:00:00Z', Date.UTC(2026, 10, 28)],
    ['2026-11-28', Date.UTC(2026, 10, 28)],
    ['2026-11-28T17:40', Date.UTC(2026, 10, 28, 17, 40)],
    ['2026-11-28T17:40:05.123Z', Date.UTC(2026, 10, 28, 17, 40, 5, 123)],
    ['2026-11-28T17:40:05.1239Z', Date.UTC(2026, 10, 28, 17, 40, 5, 123)],
    ['2026-11-28t17:40:05,5z', Date.UTC(2026, 10, 28, 17, 40, 5, 500)],
    ['2026-11-28 17:40:05', Date.UTC(2026, 10, 28, 17, 40, 5)],
    ['2026-11-28T18:40:00+01:00', Date.UTC(2026, 10, 28, 17, 40)],
    ['2026-11-28T12:10:00-0530', Date.UTC(2026, 10, 28, 17, 40)],
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['2000-02-29', Date.UTC(2000, 1, 29)],
    ['0001-01-01', Date.UTC(2001, 0, 1) - 2000 * 365.2425 * 86_400_000],
  ])("reads the timestamp '%s'", (raw, value) => {
    expect(condition(`last_update < '${raw}'`).value).toEqual({ type: 'timestamp', value, raw, offset: 14 });
  });

  it('reads any ISO 8601 instant as JavaScript does', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date('0000-01-01T00:00:00Z'),
          max: new Date('9999-12-31T23:59:59.999Z'),
          noInvalidDate: true,
        }),
        (date) => {
          const iso = date.toISOString();
          expect(parseIsoTimestamp(iso)).toBe(date.getTime());
          expect(parseIsoTimestamp(iso.slice(0, 10))).toBe(Date.parse(iso.slice(0, 10)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it.each([
    '2026-02-29',
    '1900-02-29',
    '2026-04-31',
    '2026-13-01',
    '2026-00-10',
    '2026-11-28T24:00:00Z',
    '2026-11-28T17:60:00Z',
    '2026-11-28T17:40:60Z',
    '2026-11-28T17:40:00+24:00',
    '2026-1-1',
    '26-11-28',
    '2026-11-28T',
    '2026-11-28T17',
    'yesterday',
    '1732800000000',
    '',
  ])("rejects the timestamp '%s'", (raw) => {
    expect(errorOf(`last_update < '${raw}'`)).toBe(
      `Invalid query at position 15: expected an ISO 8601 timestamp in quotes (like '2026-11-28T00:00:00Z') or a time relative to now (like -10s, -5m, -2h, -30d, +1d) but found '${raw}'`,
    );
  });

  it.each([
    ["name = 'isn''t'", "isn't"],
    ["name = ''''", "'"],
    ["name = ''", ''],
    ["name = '; DROP TABLE jobs; --'", '; DROP TABLE jobs; --'],
    ["name = 'a and b or (c)'", 'a and b or (c)'],
    ["name = 'straße 😀'", 'straße 😀'],
  ])('reads the text of %s literally', (text, value) => {
    expect(condition(text).value).toEqual({ type: 'text', value, offset: 7 });
  });

  it.each([
    ["job_status = 'IN_PROGRESS'", 'in_progress'],
    ["job_type = 'Reboot'", 'reboot'],
  ])('stores the enum value of %s in lower case', (text, value) => {
    expect(condition(text, 'jobs').value).toMatchObject({ type: 'text', value });
  });

  it.each([
    ["group = 'test/'", '=', { type: 'text', value: '/test' }],
    ["group = '/a/b//'", '=', { type: 'text', value: '/a/b' }],
    ["group <> 'a'", '<>', { type: 'text', value: '/a' }],
    ["group = ''", '=', { type: 'empty' }],
    ["group = '/'", '=', { type: 'empty' }],
    ["group startsWith 'test/'", 'startsWith', { type: 'text', value: '/test/' }],
    ["group startsWith ''", 'startsWith', { type: 'text', value: '/' }],
    ["group endsWith 'leaf//'", 'endsWith', { type: 'text', value: 'leaf' }],
    ["group endsWith '/'", 'endsWith', { type: 'text', value: '' }],
    ["group contains 'a/'", 'contains', { type: 'text', value: 'a/' }],
  ])('canonicalizes the group value of %s', (text, operator, value) => {
    const node = condition(text);
    expect(node.operator).toBe(operator);
    expect(node.value).toMatchObject(value);
  });

  describe('fields of a jobs query', () => {
    it.each([
      ['id = 5', { name: 'id', scope: 'job', kind: 'number' }],
      ["device.id = 'x'", { name: 'id', scope: 'device', kind: 'text' }],
      ["DEVICE.ID = 'x'", { name: 'id', scope: 'device', kind: 'text' }],
      ["description = 'x'", { name: 'description', scope: 'job', kind: 'text' }],
      ["device.description = 'x'", { name: 'description', scope: 'device', kind: 'text' }],
      ['customer_id = 1', { name: 'customer_id', scope: 'job', kind: 'number' }],
      ["name = 'x'", { name: 'name', scope: 'device', kind: 'text' }],
      ["device.name = 'x'", { name: 'name', scope: 'device', kind: 'text' }],
      ["job_status = 'new'", { name: 'job_status', scope: 'job', kind: 'enum' }],
      ['job_completion_time = empty', { name: 'job_completion_time', scope: 'job', kind: 'timestamp' }],
    ])('%s', (text, field) => {
      expect(condition(text, 'jobs').field).toMatchObject(field);
    });
  });

  describe('limits', () => {
    const ofLength = (length: number, filler = ' ') => {
      const head = "name = '";
      return `${head}${filler.repeat(length - head.length - 1)}'`;
    };

    it(`accepts ${MAX_QUERY_LENGTH} bytes and rejects one more`, () => {
      expect(parse(ofLength(MAX_QUERY_LENGTH)).type).toBe('condition');
      expect(errorOf(ofLength(MAX_QUERY_LENGTH + 1))).toBe(
        'Invalid query: expected at most 4096 bytes (4 KiB) but found 4097 bytes',
      );
    });

    it('counts bytes of UTF-8, not characters', () => {
      const text = `name = '${'é'.repeat(2044)}'`; // 9 + 4088 bytes
      expect(text.length).toBeLessThan(MAX_QUERY_LENGTH);
      expect(errorOf(text)).toBe('Invalid query: expected at most 4096 bytes (4 KiB) but found 4097 bytes');
      expect(parse(`name = '${'é'.repeat(2043)}'`).type).toBe('condition');
    });

    it(`accepts ${MAX_QUERY_DEPTH} nested levels and rejects one more`, () => {
      const nested = (depth: number) => `${'('.repeat(depth)}name = 'a'${')'.repeat(depth)}`;
      expect(parse(nested(MAX_QUERY_DEPTH)).type).toBe('condition');
      expect(errorOf(nested(MAX_QUERY_DEPTH + 1))).toBe(
        "Invalid query at position 65: expected at most 64 nested levels of parentheses and 'not' but found '('",
      );
      const nots = (depth: number) => `${'not '.repeat(depth)}name = 'a'`;
      expect(parse(nots(MAX_QUERY_DEPTH)).type).toBe('not');
      expect(errorOf(nots(MAX_QUERY_DEPTH + 1))).toMatch(
        /^Invalid query at position 257: expected at most 64/,
      );
      expect(errorOf(`${'(not '.repeat(40)}name = 'a'`)).toMatch(
        /^Invalid query at position 161: expected at most 64/,
      );
    });

    it('rejects a query of nothing but parentheses without overflowing the stack', () => {
      expect(errorOf('('.repeat(MAX_QUERY_LENGTH))).toMatch(/^Invalid query at position 65: /);
      expect(errorOf('not '.repeat(1024))).toMatch(/^Invalid query at position 257: /);
    });
  });

  describe('errors', () => {
    const OPERATORS = '(=, <>, <, <=, >, >=, startsWith, endsWith, contains)';
    const DEVICE_FIELD_LIST =
      'id, customer_id, vendor_id, name, type, firmware_version, serial_number, mac, ip, public_ip, description, notes, contact, location, carrier, carrier2, network, network2, group, tags, connection_status, health_status, restricted_status, signal_percent, signal_percent2, signal_quality, signal_quality2, signal_strength, signal_strength2, last_connect, last_disconnect, last_update, or device.<device field>';
    it.each([
      [
        "name equals 'x'",
        `Invalid query at position 6: expected an operator ${OPERATORS} but found 'equals'`,
      ],
      ['name', `Invalid query at position 5: expected an operator ${OPERATORS} but found end of query`],
      ["name != 'x'", `Invalid query at position 6: expected an operator ${OPERATORS} but found '!'`],
      ["nmae = 'x'", `Invalid query at position 1: expected a field (${DEVICE_FIELD_LIST}) but found 'nmae'`],
      [
        "job_status = 'new'",
        `Invalid query at position 1: expected a field (${DEVICE_FIELD_LIST}) but found 'job_status'`,
      ],
      [
        "device.nmae = 'x'",
        `Invalid query at position 1: expected a field (${DEVICE_FIELD_LIST}) but found 'device.nmae'`,
      ],
      ["'x' = name", "Invalid query at position 1: expected a field, 'not' or '(' but found 'x'"],
      ['', null],
      ['()', "Invalid query at position 2: expected a field, 'not' or '(' but found ')'"],
      [
        "name = 'x' and",
        "Invalid query at position 15: expected a field, 'not' or '(' but found end of query",
      ],
      [
        "name = 'x' and or type = 'y'",
        "Invalid query at position 16: expected a field, 'not' or '(' but found 'or'",
      ],
      [
        "name = 'abc",
        "Invalid query at position 12: expected ' to close the text that starts at position 8 but found end of query",
      ],
      [
        "name = 'it''s",
        "Invalid query at position 14: expected ' to close the text that starts at position 8 but found end of query",
      ],
      ["(name = 'a'", "Invalid query at position 12: expected 'and', 'or' or ')' but found end of query"],
      [
        "((name = 'a') or type = 'b'",
        "Invalid query at position 28: expected 'and', 'or' or ')' but found end of query",
      ],
      [
        "name = 'a')",
        "Invalid query at position 11: expected 'and', 'or' or the end of the query but found ')'",
      ],
      [
        "name = 'a' type = 'b'",
        "Invalid query at position 12: expected 'and', 'or' or the end of the query but found 'type'",
      ],
      ["id = 'x' or 1=1", "Invalid query at position 13: expected a field, 'not' or '(' but found '1'"],
      [
        "name = 'x' ; DROP TABLE jobs; --",
        "Invalid query at position 12: expected 'and', 'or' or the end of the query but found ';'",
      ],
      ["na'me = 'x'", `Invalid query at position 1: expected a field (${DEVICE_FIELD_LIST}) but found 'na'`],
      [
        'name =',
        "Invalid query at position 7: expected a text in single quotes (like 'abc') or empty but found end of query",
      ],
      [
        'name = 5',
        "Invalid query at position 8: expected a text in single quotes (like 'abc') or empty but found '5'",
      ],
      [
        'name = "x"',
        `Invalid query at position 8: expected a text in single quotes (like 'abc') or empty but found '"'`,
      ],
      [
        'name startsWith empty',
        "Invalid query at position 17: expected a text in single quotes (like 'abc') but found 'empty'",
      ],
      [
        'name = x',
        "Invalid query at position 8: expected a text in single quotes (like 'abc') or empty but found 'x'",
      ],
      [
        "signal_percent = '5'",
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) or empty but found '5'",
      ],
      [
        'signal_percent < 5abc',
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '5abc'",
      ],
      [
        'signal_percent < 1.2.3',
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '1.2.3'",
      ],
      [
        'signal_percent < 0x',
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '0x'",
      ],
      [
        'signal_percent < .5',
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '.5'",
      ],
      [
        'signal_percent < - 5',
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '-'",
      ],
      [
        'signal_percent < 1e3',
        "Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '1e3'",
      ],
      [
        'vendor_id = 0x20000000000000',
        "Invalid query at position 13: expected a number (like 42, -8.5 or 0x1F) or empty but found '0x20000000000000'",
      ],
      [
        `signal_percent < ${'9'.repeat(400)}`,
        `Invalid query at position 18: expected a number (like 42, -8.5 or 0x1F) but found '${'9'.repeat(40)}…'`,
      ],
      [
        'last_connect > 10s',
        "Invalid query at position 16: expected an ISO 8601 timestamp in quotes (like '2026-11-28T00:00:00Z') or a time relative to now (like -10s, -5m, -2h, -30d, +1d) but found '10s'",
      ],
      [
        'last_connect > -10w',
        "Invalid query at position 16: expected an ISO 8601 timestamp in quotes (like '2026-11-28T00:00:00Z') or a time relative to now (like -10s, -5m, -2h, -30d, +1d) but found '-10w'",
      ],
      [
        'last_connect > -1.5h',
        "Invalid query at position 16: expected an ISO 8601 timestamp in quotes (like '2026-11-28T00:00:00Z') or a time relative to now (like -10s, -5m, -2h, -30d, +1d) but found '-1.5h'",
      ],
      [
        'last_connect > 5',
        "Invalid query at position 16: expected an ISO 8601 timestamp in quotes (like '2026-11-28T00:00:00Z') or a time relative to now (like -10s, -5m, -2h, -30d, +1d) but found '5'",
      ],
      [
        "health_status = 'bad'",
        "Invalid query at position 17: expected one of 'normal', 'warning', 'error', 'unknown' or empty but found 'bad'",
      ],
      [
        "health_status < 'error'",
        "Invalid query at position 15: expected an operator for the enum field health_status (=, <>) but found '<'",
      ],
      [
        "health_status contains 'err'",
        "Invalid query at position 15: expected an operator for the enum field health_status (=, <>) but found 'contains'",
      ],
      [
        "group < '/a'",
        "Invalid query at position 7: expected an operator for the group field group (=, <>, startsWith, endsWith, contains) but found '<'",
      ],
      [
        "tags >= 'a'",
        "Invalid query at position 6: expected an operator for the tags field tags (=, <>, startsWith, endsWith, contains) but found '>='",
      ],
      [
        'signal_percent contains 5',
        "Invalid query at position 16: expected an operator for the number field signal_percent (=, <>, <, <=, >, >=) but found 'contains'",
      ],
      [
        "last_connect startsWith '2026'",
        "Invalid query at position 14: expected an operator for the timestamp field last_connect (=, <>, <, <=, >, >=) but found 'startsWith'",
      ],
      [
        "name = '😀' and 😀 = 'x'",
        `Invalid query at position 16: expected a field (${DEVICE_FIELD_LIST}) but found '😀'`,
      ],
      [
        "name = '😀' and § = 'x'",
        `Invalid query at position 16: expected a field (${DEVICE_FIELD_LIST}) but found '§'`,
      ],
      [
        "name = 'a\uD800'",
        'Invalid query at position 10: expected Unicode text but found a lone surrogate code unit',
      ],
      [
        'name = empty empty',
        "Invalid query at position 14: expected 'and', 'or' or the end of the query but found 'empty'",
      ],
    ])('%s', (text, message) => {
      if (message === null) expect(parseQuery(text, 'devices')).toBeNull();
      else expect(errorOf(text)).toBe(message);
    });

    it.each([
      [
        "job_status = 'done'",
        "Invalid query at position 14: expected one of 'new', 'in_progress', 'complete', 'failed', 'canceled' or empty but found 'done'",
      ],
      [
        "job_type <> 'restart'",
        "Invalid query at position 13: expected one of 'send_message', 'update_firmware', 'reboot', 'file_system', 'data_service', 'disconnect', 'command' or empty but found 'restart'",
      ],
      [
        "id = '5'",
        "Invalid query at position 6: expected a number (like 42, -8.5 or 0x1F) or empty but found '5'",
      ],
      [
        'device.id = 5',
        "Invalid query at position 13: expected a text in single quotes (like 'abc') or empty but found '5'",
      ],
      [
        "status = 'queued'",
        /^Invalid query at position 1: expected a field \(id, customer_id, username, job_type, job_status, description, job_submit_time, job_completion_time, target_count, progress_success, progress_failures, progress_canceled, progress_pending, rollout_state, abort_reason, vendor_id, name, .*, last_update, or device\.<device field>\) but found 'status'$/,
      ],
    ])('in a jobs query: %s', (text, message) => {
      expect(errorOf(text, 'jobs')).toMatch(message);
    });

    it.each([
      [
        "status = 'done'",
        "Invalid query at position 10: expected one of 'queued', 'in_progress', 'successful', 'failed', 'timed_out', 'canceled' or empty but found 'done'",
      ],
      [
        "progress = 'x'",
        "Invalid query at position 12: expected a number (like 42, -8.5 or 0x1F) or empty but found 'x'",
      ],
    ])('in a targets query: %s', (text, message) => {
      expect(errorOf(text, 'targets')).toBe(message);
    });
  });
});

describe('queryFields', () => {
  it('offers every device field on every resource, by its name and as device.<name>', () => {
    for (const resource of ['devices', 'targets', 'jobs'] as const) {
      const fields = queryFields(resource);
      for (const name of DEVICE_FIELDS)
        expect(fields.get(`device.${name}`)).toMatchObject({ name, scope: 'device' });
      for (const name of DEVICE_FIELDS) expect(fields.has(name)).toBe(true);
    }
  });

  it('gives the jobs query its 13 job fields, which win over device fields of the same name', () => {
    const fields = queryFields('jobs');
    for (const name of JOB_FIELDS) expect(fields.get(name)).toMatchObject({ name, scope: 'job' });
    expect(fields.get('id')?.kind).toBe('number');
    expect(fields.get('device.id')?.kind).toBe('text');
    expect(fields.get('job_status')?.values).toEqual([
      'new',
      'in_progress',
      'complete',
      'failed',
      'canceled',
    ]);
  });

  it('gives the targets query the target status and fields', () => {
    const fields = queryFields('targets');
    expect(fields.get('status')).toMatchObject({ scope: 'target', kind: 'enum' });
    expect(fields.get('device_id')).toMatchObject({ scope: 'target', kind: 'text' });
    expect(fields.get('id')).toMatchObject({ scope: 'device', kind: 'text' });
  });

  it('has a kind for every field and values for every enum', () => {
    for (const resource of ['devices', 'targets', 'jobs'] as const) {
      for (const [key, info] of queryFields(resource)) {
        expect(key).toBe(key.toLowerCase());
        expect(info.kind === 'enum').toBe(info.values !== undefined);
      }
    }
  });
});
