import { type Kysely, sql } from 'kysely';

/**
 * CSV cells written by PostgreSQL itself (src/store/postgres/csv.ts), as src/model/csv.ts writes
 * them: `fleetjobs_csv(value)` for each column type (PostgreSQL picks the overload by the column's
 * type) and `fleetjobs_csv_time` / `fleetjobs_csv_json` for epoch milliseconds and JSON text. A
 * value comes out as '' when missing, and as NULL when this SQL cannot write it exactly as the
 * model does (a timestamp outside 1970–9999, a number in exponent notation, a JSON string with
 * escapes): the reader then encodes that batch in JavaScript. Plain SQL functions, inlined into
 * the export's query.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  // RFC 4180: quoted when holding a quote, comma, CR or LF, its quotes doubled.
  await sql`
    CREATE FUNCTION fleetjobs_csv(value text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN value IS NULL THEN ''
                  WHEN value ~ '[",\r\n]' THEN '"' || replace(value, '"', '""') || '"'
                  ELSE value END
    $$`.execute(db);
  await sql`
    CREATE FUNCTION fleetjobs_csv(value bigint) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT coalesce(value::text, '')
    $$`.execute(db);
  // JavaScript's String(number) is positional from 1e-6 to 1e21 (PostgreSQL's text switches to
  // exponents sooner); the shortest digits, as both write them, placed positionally by numeric.
  await sql`
    CREATE FUNCTION fleetjobs_csv(value double precision) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN value IS NULL THEN ''
                  WHEN value = 0 THEN '0'
                  WHEN abs(value) >= 1e-6 AND abs(value) < 1e21 THEN value::text::numeric::text
                  END
    $$`.execute(db);
  // Date#toISOString with four-digit years.
  await sql`
    CREATE FUNCTION fleetjobs_csv_time(millis bigint) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN millis IS NULL THEN ''
                  WHEN millis >= 0 AND millis < 253402300800000
                    THEN to_char(timestamp 'epoch' + millis * interval '1 millisecond', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
                  END
    $$`.execute(db);
  // JSON text as JSON.stringify wrote it: a list or object as it is, a string without its quotes.
  await sql`
    CREATE FUNCTION fleetjobs_csv_json(document text) RETURNS text LANGUAGE sql STABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN document IS NULL OR document = 'null' THEN ''
                  WHEN left(document, 1) = '"' THEN CASE WHEN strpos(document, '\\') = 0 THEN fleetjobs_csv(substr(document, 2, length(document) - 2)) END
                  ELSE fleetjobs_csv(document) END
    $$`.execute(db);
}
