/** How a column's value, as the store reads it, becomes a CSV cell. */
export type CsvCell = 'value' | 'timestamp' | 'json';

/**
 * What a CSV export writes of each row read: the cells are `columns` (indexes into the row as
 * selected) written as `kinds` say; `keyset` holds the indexes of the sort value and the key, where
 * the next batch continues.
 */
export interface CsvPlan {
  columns: readonly number[];
  kinds: readonly CsvCell[];
  keyset: readonly [number, number];
}

/** One batch of an export as CSV records, with the keyset values of its last row (null: no rows). */
export interface CsvBatch {
  /** The records as text, or as its UTF-8 (as PostgreSQL's COPY writes them). */
  records: string | Uint8Array;
  rows: number;
  last: [unknown, unknown] | null;
}

/**
 * What a JSON page writes of the rows read (at most `limit` items, the rows beyond tell that more
 * follow): each item an object of `fields` in order, the cells as CsvPlan says (a timestamp in ISO
 * 8601, a missing value `null`).
 */
export interface JsonPlan extends CsvPlan {
  fields: readonly string[];
  limit: number;
}

/** A page's items as one JSON array in UTF-8, and where the next page starts. */
export interface JsonBatch {
  json: Uint8Array;
  count: number;
  /** When more rows were read than the page holds: the keyset values of its last item (else null). */
  next: [unknown, unknown] | null;
}

/**
 * The text of cells in CSV, XML and JSON, in one self-contained function: the SQLite read workers
 * evaluate its source text (src/store/sqlite/read-pool.ts) and encode exports where they read them,
 * so the workers, the PostgreSQL store and the API write every cell with this one code.
 */
export function cellEncoding() {
  const NEEDS_QUOTES = /[",\r\n]/;
  const DAY_MS = 86_400_000;
  /** 10000-01-01: from there on (and before 1970) toISOString's own format is used. */
  const FOUR_DIGIT_YEARS_END_MS = 253_402_300_800_000;
  const pad2 = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
  const pad3 = (n: number): string => (n < 10 ? `00${n}` : n < 100 ? `0${n}` : `${n}`);
  /** The day of the last timestamp formatted, and its `YYYY-MM-DDT`: exports format millions of them, mostly of few days. */
  let cachedDay = Number.NaN;
  let cachedDayPrefix = '';

  /** ISO 8601 with milliseconds, as Date#toISOString writes it, without a Date per call. */
  const isoTime = (millis: number | null | undefined): string | null => {
    if (millis === null || millis === undefined) return null;
    if (!Number.isInteger(millis) || millis < 0 || millis >= FOUR_DIGIT_YEARS_END_MS) {
      return new Date(millis).toISOString();
    }
    const day = Math.floor(millis / DAY_MS);
    if (day !== cachedDay) {
      cachedDay = day;
      cachedDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    }
    const ofDay = millis - day * DAY_MS;
    const seconds = Math.floor(ofDay / 1000);
    return `${cachedDayPrefix}${pad2(Math.floor(seconds / 3600))}:${pad2(Math.floor(seconds / 60) % 60)}:${pad2(seconds % 60)}.${pad3(ofDay % 1000)}Z`;
  };

  /** RFC 4180: a field with a quote, comma, CR or LF is quoted, its quotes doubled. */
  const csvField = (text: string): string =>
    NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;

  /** A value as text: empty for none, compact JSON for lists and objects (tags, response). */
  const valueText = (value: unknown): string =>
    value === null || value === undefined
      ? ''
      : typeof value === 'object'
        ? JSON.stringify(value)
        : String(value);

  /** One cell as CSV; numbers (most cells of an export) and timestamps never need quotes. */
  const csvCell = (value: unknown, kind: CsvCell): string => {
    if (value === null || value === undefined) return '';
    if (kind === 'timestamp') return isoTime(value as number) ?? '';
    if (typeof value === 'number') return String(value);
    return csvField(valueText(kind === 'json' ? JSON.parse(value as string) : value));
  };

  /** `rows` as CSV records, CRLF after each: one string, built by concatenation without an array per row. */
  const csvBatch = (rows: readonly (readonly unknown[])[], plan: CsvPlan): CsvBatch => {
    const { columns, kinds } = plan;
    const last = columns.length - 1;
    let text = '';
    for (const row of rows) {
      for (let index = 0; index < last; index++) {
        text += `${csvCell(row[columns[index] as number], kinds[index] as CsvCell)},`;
      }
      text += `${csvCell(row[columns[last] as number], kinds[last] as CsvCell)}\r\n`;
    }
    const final = rows[rows.length - 1];
    return {
      records: text,
      rows: rows.length,
      last: final === undefined ? null : [final[plan.keyset[0]], final[plan.keyset[1]]],
    };
  };

  /**
   * Items per JSON.stringify of jsonArray: each text stays a small string. V8 gives a large one
   * (from ~128 kB) memory of its own, fresh each time: ~2.5 ms of page faults per 350 kB here.
   */
  const JSON_SLICE = 100;

  /**
   * `items` as the UTF-8 of one JSON array, in a buffer of its own (its memory can move to another
   * thread): stringified a slice at a time, measured, then written into it.
   */
  const jsonArray = (items: readonly unknown[]): Uint8Array => {
    const texts: string[] = [];
    // The brackets, and a comma between slices.
    let length = 2 + Math.max(0, Math.ceil(items.length / JSON_SLICE) - 1);
    for (let start = 0; start < items.length; start += JSON_SLICE) {
      const text = JSON.stringify(items.slice(start, start + JSON_SLICE)).slice(1, -1);
      texts.push(text);
      length += Buffer.byteLength(text);
    }
    const bytes = Buffer.allocUnsafeSlow(length);
    let offset = bytes.write('[');
    for (let index = 0; index < texts.length; index++) {
      if (index > 0) offset += bytes.write(',', offset);
      offset += bytes.write(texts[index] as string, offset);
    }
    bytes.write(']', offset);
    return bytes;
  };

  /** A cell's value in JSON: what JSON.stringify writes of it once converted. */
  const jsonCell = (value: unknown, kind: CsvCell): unknown => {
    if (value === null || value === undefined) return null;
    if (kind === 'timestamp') return isoTime(value as number);
    return kind === 'json' ? JSON.parse(value as string) : value;
  };

  /**
   * The first `plan.limit` rows as a JSON array of objects (stringified by slices of objects, in
   * about half the time of stringifying each item and joining the texts).
   */
  const jsonBatch = (rows: readonly (readonly unknown[])[], plan: JsonPlan): JsonBatch => {
    const { fields, columns, kinds } = plan;
    const count = Math.min(rows.length, plan.limit);
    const items: Record<string, unknown>[] = new Array(count);
    for (let row = 0; row < count; row++) {
      const values = rows[row] as readonly unknown[];
      const item: Record<string, unknown> = {};
      for (let index = 0; index < fields.length; index++) {
        item[fields[index] as string] = jsonCell(values[columns[index] as number], kinds[index] as CsvCell);
      }
      items[row] = item;
    }
    const final = rows[count - 1];
    return {
      json: jsonArray(items),
      count,
      next:
        rows.length > count && final !== undefined ? [final[plan.keyset[0]], final[plan.keyset[1]]] : null,
    };
  };

  return { isoTime, csvField, valueText, csvBatch, jsonArray, jsonBatch };
}

export const { isoTime, csvField, valueText, csvBatch, jsonArray, jsonBatch } = cellEncoding();
