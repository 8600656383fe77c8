import { describe, expect, it } from 'vitest';
import { isOutOfSpace } from '../../src/store/errors.js';

describe('isOutOfSpace', () => {
  it("knows SQLite's SQLITE_FULL and PostgreSQL's disk_full (53100)", () => {
    expect(isOutOfSpace(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }))).toBe(
      true,
    );
    expect(isOutOfSpace(Object.assign(new Error('could not extend file'), { code: '53100' }))).toBe(true);
  });

  it('is false for every other error', () => {
    expect(isOutOfSpace(Object.assign(new Error('constraint'), { code: 'SQLITE_CONSTRAINT' }))).toBe(false);
    expect(isOutOfSpace(Object.assign(new Error('unique'), { code: '23505' }))).toBe(false);
    expect(isOutOfSpace(new Error('no code'))).toBe(false);
    expect(isOutOfSpace('SQLITE_FULL')).toBe(false);
    expect(isOutOfSpace(null)).toBe(false);
  });
});
