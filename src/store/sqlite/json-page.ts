import type { CsvCell, JsonPlan } from '../../model/csv.js';

/** 10000-01-01 in epoch milliseconds: from there on (and before 1970) isoTime writes another format. */
const FOUR_DIGIT_YEARS_END_MS = 253_402_300_800_000;

const quoted = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/**
 * The cell `column` as json_object writes it as the model's jsonBatch does: text as a JSON string
 * (both escape the same characters the same way), an integer in digits, a timestamp (integer
 * milliseconds from 1970 to 9999) in ISO 8601 with milliseconds.
 */
const cellJson = (kind: CsvCell, column: string): string =>
  kind === 'timestamp'
    ? `iif(${column} IS NULL, NULL, printf('%s.%03dZ', replace(datetime(${column} / 1000, 'unixepoch'), ' ', 'T'), ${column} % 1000))`
    : column;

/**
 * A statement answering the page that `sql` (a SELECT of at most `plan.limit + 1` rows, in order)
 * reads, as one row: the JSON array of its first `plan.limit` items as UTF-8 bytes (a blob: no
 * string is made of it on the way), the rows read, the sort value and key of the page's last item
 * (NULL unless more rows were read), and whether every timestamp was in the years written as
 * YYYY (when one is not, the page is read again as rows and encoded by jsonBatch).
 *
 * Only for cells SQLite writes exactly as jsonBatch does: integers and text (the read worker checks
 * that the columns are declared so in STRICT tables; a fraction's digits differ, 1.0 and 1.0e+20),
 * not JSON text (written in JSON.parse's normal form by jsonBatch): undefined when a cell is JSON.
 *
 * SQLite writes 1,000 jobs of a page in about 60 % of the time it takes to hand them to JavaScript
 * as values and encode them there (2.1–2.4 against 3.6–3.8 ms, scratch measure, quiet): the load
 * of issue 9's mix is mostly such pages.
 *
 * The rows are numbered in the order the page's SELECT yields them: it holds an ORDER BY and a
 * LIMIT, so SQLite reads it as a subquery of its own, in that order, and aggregates in that order.
 */
export function jsonPageStatement(sql: string, plan: JsonPlan): string | undefined {
  const { fields, columns, kinds, keyset, limit } = plan;
  if (kinds.includes('json') || !Number.isSafeInteger(limit) || limit < 1) return undefined;
  const width = Math.max(...columns, ...keyset) + 1;
  const names = Array.from({ length: width }, (_, index) => `c${index}`);
  const cell = (index: number) => `p.c${columns[index] as number}`;
  const item = fields
    .map((field, index) => `${quoted(field)}, ${cellJson(kinds[index] as CsvCell, cell(index))}`)
    .join(', ');
  const inRange = fields.flatMap((_, index) =>
    kinds[index] === 'timestamp'
      ? [`coalesce(${cell(index)} BETWEEN 0 AND ${FOUR_DIGIT_YEARS_END_MS - 1}, 1)`]
      : [],
  );
  const [sortColumn, keyColumn] = keyset;
  const last = (column: number) => `max(iif(p.n = ${limit}, p.c${column}, NULL))`;
  return `WITH page(${names.join(', ')}) AS (${sql})
SELECT CAST('[' || coalesce(group_concat(p.item, ',') FILTER (WHERE p.n <= ${limit}), '') || ']' AS BLOB),
  count(*), ${last(sortColumn as number)}, ${last(keyColumn as number)}, coalesce(min(p.exact), 1)
FROM (SELECT json_object(${item}) AS item, ${inRange.length === 0 ? '1' : inRange.join(' AND ')} AS exact,
  p.*, row_number() OVER () AS n FROM page p) p`;
}
