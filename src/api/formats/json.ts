import { Utf8Writer } from './utf8.js';

/** `JSON.stringify({ ...envelope, list: items.map(toItem) })` as UTF-8 bytes, written item by item. */
export function jsonListBody<T>(
  envelope: Record<string, unknown>,
  items: readonly T[],
  toItem: (item: T) => unknown,
): Buffer {
  const out = new Utf8Writer();
  const head = JSON.stringify(envelope);
  out.write(`${head.slice(0, -1)}${head === '{}' ? '' : ','}"list":[`);
  for (let index = 0; index < items.length; index++) {
    const item = JSON.stringify(toItem(items[index] as T));
    out.write(index === 0 ? item : `,${item}`);
  }
  out.write(']}');
  return out.bytes();
}
