import { type Kysely, sql } from 'kysely';

/**
 * The cells of a CSV export as `COPY … TO STDOUT (FORMAT csv)` writes them (src/store/postgres/
 * csv.ts), valued so that COPY writes the text src/model/csv.ts writes: `fleetjobs_csv(value)`
 * for each column type (PostgreSQL picks the overload by the column's type) and
 * `fleetjobs_csv_json` for JSON text (timestamps are written by the reader). COPY quotes what RFC
 * 4180 quotes and doubles quotes itself; it writes NULL as nothing and '' as `""`, so an empty cell
 * is NULL. `fleetjobs_csv_exact` and `fleetjobs_csv_json_exact` tell the values this SQL cannot
 * write exactly as the model does (a fraction, a JSON string with escapes): the reader then encodes
 * that batch in JavaScript. Plain SQL functions, inlined into the export's statement.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE FUNCTION fleetjobs_csv_exact(value text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT true
    $$`.execute(db);
  await sql`
    CREATE FUNCTION fleetjobs_csv_exact(value bigint) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT true
    $$`.execute(db);
  await sql`
    CREATE FUNCTION fleetjobs_csv_exact(value double precision) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT value IS NULL OR (value = trunc(value) AND abs(value) < 9007199254740992)
    $$`.execute(db);
  await sql`
    CREATE FUNCTION fleetjobs_csv(value text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT nullif(value, '')
    $$`.execute(db);
  await sql`
    CREATE FUNCTION fleetjobs_csv(value bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT value
    $$`.execute(db);
  // An integer as JavaScript writes it; any other number is not exact: PostgreSQL's shortest digits
  // are at times one longer than JavaScript's (5.2527619088547123e+17 for 525276190885471200).
  await sql`
    CREATE FUNCTION fleetjobs_csv(value double precision) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN fleetjobs_csv_exact(value) THEN value::bigint END
    $$`.execute(db);
  // JSON text as JSON.stringify wrote it: a list or object as it is, a string without its quotes.
  await sql`
    CREATE FUNCTION fleetjobs_csv_json(document text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN document = 'null' THEN NULL
                  WHEN left(document, 1) = '"' THEN nullif(substr(document, 2, length(document) - 2), '')
                  ELSE document END
    $$`.execute(db);
  await sql`
    CREATE FUNCTION fleetjobs_csv_json_exact(document text) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT document IS NULL OR left(document, 1) <> '"' OR strpos(document, '\\') = 0
    $$`.execute(db);
}
