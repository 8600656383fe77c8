import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/model/error.js';
import { parseQuery, type Resource, serializeQuery } from '../../src/query/index.js';
import { arbQuery, withoutOffsets } from './arbitraries.js';

const RESOURCES: Resource[] = ['devices', 'targets', 'jobs'];

describe.each(RESOURCES)('serializeQuery on %s', (resource) => {
  it('a random query survives serialize → parse unchanged', () => {
    fc.assert(
      fc.property(arbQuery(resource), (query) => {
        const parsed = parseQuery(serializeQuery(query), resource);
        expect(parsed && withoutOffsets(parsed)).toEqual(query);
      }),
      { numRuns: 2000 },
    );
  });

  it('serialize(parse(q)) parses to the same AST for text written with any case and spacing', () => {
    const respell = (text: string, upper: boolean[]) =>
      text
        .split(/(\s+|'(?:[^']|'')*')/)
        .map((part, i) => (part.startsWith("'") ? part : upper[i % upper.length] ? part.toUpperCase() : part))
        .join('')
        .replaceAll(' ', '  ');
    fc.assert(
      fc.property(
        arbQuery(resource),
        fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
        (query, upper) => {
          const text = respell(serializeQuery(query), upper);
          const once = parseQuery(text, resource);
          expect(once).not.toBeNull();
          if (once === null) return;
          const twice = parseQuery(serializeQuery(once), resource);
          expect(twice && withoutOffsets(twice)).toEqual(withoutOffsets(once));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

const expectOnlyQueryErrors = (text: string, resource: Resource) => {
  try {
    parseQuery(text, resource);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).status).toBe(400);
    expect((error as AppError).message).toMatch(
      /^Invalid query(: | at position \d+: )expected .+ but found .+$/s,
    );
  }
};

const TOKENS = [
  'name',
  'NAME',
  'group',
  'tags',
  'id',
  'device.id',
  'device.',
  'job_status',
  'status',
  'signal_percent',
  'last_connect',
  'and',
  'or',
  'not',
  'empty',
  'AND',
  'Or',
  'startsWith',
  'endswith',
  'CONTAINS',
  '=',
  '<>',
  '<',
  '<=',
  '>',
  '>=',
  '!=',
  '==',
  '(',
  ')',
  "'",
  "''",
  "'x'",
  "'it''s'",
  "'new'",
  "'2026-11-28'",
  "'2026-13-45'",
  '5',
  '-85',
  '2.5',
  '0x1F',
  '0x',
  '-10s',
  '+1d',
  '10s',
  '-',
  '+',
  '.',
  ',',
  ';',
  '"',
  '\\',
  '%',
  '😀',
  '\uD83D',
  '\u0000',
  ' ',
  '\t',
  '\n',
  "'; DROP TABLE jobs; --",
  '1=1',
];

describe('parseQuery on arbitrary input', () => {
  it.each(RESOURCES)('random strings never throw anything but a 400 query error (%s)', (resource) => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 60 }), (text) =>
        expectOnlyQueryErrors(text, resource),
      ),
      { numRuns: 3000 },
    );
  });

  it.each(RESOURCES)('random token soups never throw anything but a 400 query error (%s)', (resource) => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...TOKENS), { maxLength: 25 }),
        fc.array(fc.constantFrom(' ', '', '  '), { minLength: 1, maxLength: 3 }),
        (tokens, separators) => {
          const text = tokens.map((token, i) => token + separators[i % separators.length]).join('');
          expectOnlyQueryErrors(text, resource);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('mutated valid queries never throw anything but a 400 query error', () => {
    fc.assert(
      fc.property(arbQuery('jobs'), fc.nat(), fc.string({ maxLength: 3 }), (query, at, insert) => {
        const text = serializeQuery(query);
        const cut = at % (text.length + 1);
        expectOnlyQueryErrors(text.slice(0, cut) + insert + text.slice(cut + 1), 'jobs');
        expectOnlyQueryErrors(text.slice(0, cut), 'jobs');
      }),
      { numRuns: 3000 },
    );
  });
});
