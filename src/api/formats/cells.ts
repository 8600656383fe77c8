import { isoTime, type ResourceInfo } from '../resources.js';

/**
 * A field as text for CSV and XML: empty for no value, ISO 8601 for timestamps, compact JSON for
 * lists and objects (tags, response).
 */
export function cellText(
  resource: Pick<ResourceInfo<unknown>, 'timestampFields'>,
  field: string,
  value: unknown,
): string {
  if (value === null || value === undefined) return '';
  if (resource.timestampFields.has(field)) return isoTime(value as number) ?? '';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
