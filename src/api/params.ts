import { badRequest } from '../model/error.js';
import type { Order, SortDirection } from '../store/store.js';

/** The querystring as fastify parses it: a repeated parameter becomes an array. */
export type RawQuery = Record<string, string | string[] | undefined>;

export const MAX_PAGE_SIZE = 1000;

/** One parameter's value; a parameter given twice is ambiguous, so 400. */
export function single(query: RawQuery, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw badRequest(`Parameter '${name}' is given more than once`);
  return value;
}

/** `size`: a whole number from 1; above 1000 it is 1000. */
export function parseSize(text: string | undefined): number {
  if (text === undefined) return MAX_PAGE_SIZE;
  const trimmed = text.trim();
  if (!/^\+?\d+$/.test(trimmed) || /^\+?0+$/.test(trimmed)) {
    throw badRequest(`Invalid size '${text}': expected a whole number from 1 to ${MAX_PAGE_SIZE}`);
  }
  return Math.min(Number(trimmed), MAX_PAGE_SIZE);
}

/** `orderby`: `<field>` or `<field> asc|desc`, case-insensitive; the direction defaults to `desc`. */
export function parseOrder(text: string | undefined, fields: readonly string[], fallback: Order): Order {
  if (text === undefined || text.trim() === '') return fallback;
  const words = text.trim().split(/\s+/);
  const [name = '', direction, ...rest] = words;
  const field = fields.find((candidate) => candidate === name.toLowerCase());
  if (field === undefined) {
    throw badRequest(
      `Invalid orderby '${text}': unknown field '${name}'; expected one of ${fields.join(', ')}`,
    );
  }
  const lowered = direction?.toLowerCase();
  if (rest.length > 0 || (lowered !== undefined && lowered !== 'asc' && lowered !== 'desc')) {
    throw badRequest(`Invalid orderby '${text}': expected '<field>', '<field> asc' or '<field> desc'`);
  }
  return { field, direction: (lowered ?? 'desc') as SortDirection };
}

/** `force`: `true` or `false` (a bare `?force` means true). */
export function parseForce(text: string | undefined): boolean {
  if (text === undefined) return false;
  const lowered = text.trim().toLowerCase();
  if (lowered === '' || lowered === 'true') return true;
  if (lowered === 'false') return false;
  throw badRequest(`Invalid force '${text}': expected true or false`);
}

const WHOLE_NUMBER = /^\d+$/;

/** One job id from the path. */
export function parseJobId(text: string): number {
  const trimmed = text.trim();
  const id = Number(trimmed);
  if (!WHOLE_NUMBER.test(trimmed) || !Number.isSafeInteger(id)) {
    throw badRequest(`Invalid job id '${text}': expected a whole number`);
  }
  return id;
}

/** `12` or `12,13,14`: each a job id; duplicates count once. */
export function parseJobIds(text: string): number[] {
  if (text.trim() === '') throw badRequest('No job id given: expected one id or several, like 12,13,14');
  const ids = text.split(',').map((part) => {
    const trimmed = part.trim();
    const id = Number(trimmed);
    if (!WHOLE_NUMBER.test(trimmed) || !Number.isSafeInteger(id)) {
      throw badRequest(`Invalid job id '${part}' in '${text}': expected whole numbers separated by commas`);
    }
    return id;
  });
  return [...new Set(ids)];
}

/** `fields` of a bulk export: a comma-separated subset of the resource's fields, in the order given. */
export function parseFields(
  text: string | undefined,
  fields: readonly string[],
  defaultFields: readonly string[] = fields,
): readonly string[] {
  if (text === undefined || text.trim() === '') return defaultFields;
  return text.split(',').map((part) => {
    const name = part.trim().toLowerCase();
    const field = fields.find((candidate) => candidate === name);
    if (field === undefined) {
      throw badRequest(
        `Invalid fields '${text}': unknown field '${part.trim()}'; expected some of ${fields.join(', ')}`,
      );
    }
    return field;
  });
}
