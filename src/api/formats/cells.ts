import { isoTime, valueText } from '../../model/csv.js';
import type { ResourceInfo } from '../resources.js';

/**
 * A field as text for XML: empty for no value, ISO 8601 for timestamps, compact JSON for lists
 * and objects (tags, response).
 */
export function cellText(
  resource: Pick<ResourceInfo<unknown>, 'timestampFields'>,
  field: string,
  value: unknown,
): string {
  if (resource.timestampFields.has(field)) return isoTime(value as number | null | undefined) ?? '';
  return valueText(value);
}
