/**
 * Query filters over the store's tables, shared by the SQLite and PostgreSQL stores: which column
 * holds each query field, and for job queries which plan finds the matching jobs fastest.
 *
 * Tables and aliases: `devices AS d` (`group_path`, and one row per tag in `device_tags`),
 * `jobs AS j`, `job_targets AS t` (`device_pk` NULL once its device is deleted). PostgreSQL's text
 * columns must be declared COLLATE "C": then `lower()` folds ASCII only and texts compare by code
 * point, as in SQLite (checked against the reference evaluator on PostgreSQL 15 while writing this).
 */
import { type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import type { FieldRef, QueryNode } from '../../query/ast.js';
import {
  and,
  compileQuery,
  type Dialect,
  everyField,
  type FieldColumn,
  type FieldColumns,
  holdsWhenMissing,
  or,
  type Predicate,
  usesScope,
} from '../../query/sql.js';
import type { SqlDialect } from './dialect.js';
import {
  DEVICE_STORE_FIELDS,
  GROUP_STORE_FIELDS,
  JOB_STORE_FIELDS,
  MONITOR_STORE_FIELDS,
  type StoreFields,
  TARGET_STORE_FIELDS,
} from './fields.js';

export type { Dialect } from '../../query/sql.js';

/**
 * A device condition that matches fewer devices than this is answered by a semi-join from the
 * matching devices through their targets to the jobs; a more common one by probing the targets of
 * each job in page order (EXISTS), which finds a page of jobs quickly when many jobs match but
 * scans every job when few do. A page of P jobs costs the probe about P·N/n lookups (N devices, n
 * of them matching) and the semi-join about n·T/N (T targets): they meet near n = N·√(P/T), about
 * 1,800 for 100,000 devices, 3,000,000 targets and pages of 1,000 (bench/query-pages.ts).
 */
export const SEMI_JOIN_MAX_DEVICES = 2000;

type ColumnMap = ReadonlyMap<string, FieldColumn>;

/**
 * The columns of `table` under `alias`; `optionalRow`: the row comes from a LEFT JOIN, so every
 * column may be NULL.
 */
function columnMap(specs: StoreFields, alias: string, optionalRow: boolean): ColumnMap {
  const map = new Map<string, FieldColumn>();
  for (const [name, { column, nullable, integer }] of specs) {
    const reference = `"${alias}"."${column}"`;
    map.set(
      name,
      name === 'group'
        ? { type: 'group', column: reference, nullable: optionalRow }
        : { type: 'scalar', column: reference, nullable: nullable || optionalRow, integer },
    );
  }
  return map;
}

/**
 * Tags of the device `d`, one row per tag in `device_tags`. `drivenByTags`: look the tag up first
 * (its `lower(tag)` index finds the few devices with a rare tag), for statements that start from
 * the devices; otherwise probe the tags of each device at hand (its primary key), for statements
 * that start from the targets.
 */
function deviceTags(optionalRow: boolean, drivenByTags: boolean, key = '"d"."pk"'): FieldColumn {
  const any = `(EXISTS (SELECT 1 FROM device_tags dt WHERE dt.device_pk = ${key}))`;
  const foldedTag = 'lower(dt.tag)';
  if (!drivenByTags) {
    return {
      type: 'tags',
      any,
      open: `(EXISTS (SELECT 1 FROM device_tags dt WHERE dt.device_pk = ${key} AND `,
      foldedTag,
      close: '))',
    };
  }
  // `NULL IN (…)` is NULL, not FALSE: a deleted device has no tags.
  const guard = optionalRow ? '"d"."pk" IS NOT NULL AND ' : '';
  return {
    type: 'tags',
    any,
    open: `(${guard}"d"."pk" IN (SELECT dt.device_pk FROM device_tags dt WHERE `,
    foldedTag,
    close: '))',
  };
}

function deviceColumnMap(optionalRow: boolean, drivenByTags: boolean): ColumnMap {
  const map = new Map(columnMap(DEVICE_STORE_FIELDS, 'd', optionalRow));
  map.set('tags', deviceTags(optionalRow, drivenByTags));
  return map;
}

const lookup =
  (maps: Partial<Record<FieldRef['scope'], ColumnMap>>): FieldColumns =>
  (field) => {
    const column = maps[field.scope]?.get(field.name);
    if (column === undefined) throw new Error(`No column for the ${field.scope} field ${field.name}`);
    return column;
  };

const DEVICE = deviceColumnMap(false, true);
/** The device of a target, JOINed. */
const JOINED_DEVICE = deviceColumnMap(false, false);
/** The device of a target, LEFT JOINed: missing (all NULL) when the device was deleted. */
const TARGET_DEVICE = deviceColumnMap(true, false);
const JOB = columnMap(JOB_STORE_FIELDS, 'j', false);
const TARGET = columnMap(TARGET_STORE_FIELDS, 't', false);

const DEVICE_FIELDS = lookup({ device: DEVICE });
const TARGET_FIELDS = lookup({ target: TARGET, device: TARGET_DEVICE });
const JOINED_DEVICE_FIELDS = lookup({ device: JOINED_DEVICE });
const JOB_FIELDS = lookup({ job: JOB });
const JOB_TARGET_FIELDS = lookup({ job: JOB, device: TARGET_DEVICE });
/**
 * The tags of a target's device, probed by the target's device key: a condition on tags alone
 * needs no device row (a deleted device's tags went with it).
 */
const TARGET_TAG_FIELDS = lookup({
  device: new Map([['tags', deviceTags(false, false, '"t"."device_pk"')]]),
});
/** A row of `device_tags AS dt`: the tag it holds. */
const TAG_ROW_FIELDS = lookup({
  device: new Map([
    ['tags', { type: 'tags', any: 'TRUE', open: '(', foldedTag: 'lower(dt.tag)', close: ')' }],
  ]),
});
/**
 * One condition that a device meets when one of its tags does (`tags = 'pump'`, `tags contains
 * 'pu'`): its devices are those of the matching rows of `device_tags`.
 */
const oneTagCondition = (node: QueryNode): boolean =>
  node.type === 'condition' &&
  node.field.scope === 'device' &&
  node.field.name === 'tags' &&
  node.operator !== '<>' &&
  node.value.type !== 'empty';
const onlyTags = (node: QueryNode): boolean =>
  everyField(node, (field) => field.scope === 'device' && field.name === 'tags');

/** Predicate over `devices AS d`. */
export function deviceWhere(query: QueryNode, dialect: Dialect, now: number): RawBuilder<SqlBool> {
  return compileQuery(query, DEVICE_FIELDS, { dialect, now });
}

const GROUP_FIELDS = lookup({ group: columnMap(GROUP_STORE_FIELDS, 'grp', false) });

/** Predicate over the groups of the inventory, `… AS grp` (groups.ts). */
export function groupWhere(query: QueryNode, dialect: Dialect, now: number): RawBuilder<SqlBool> {
  return compileQuery(query, GROUP_FIELDS, { dialect, now });
}

/**
 * The monitor columns, but `method` (stored as sent, `POST`) and `persistent` (1 or 0) compare as
 * the lower-case enum values a query names.
 */
const MONITOR = new Map<string, FieldColumn>([
  ...columnMap(MONITOR_STORE_FIELDS, 'm', false),
  ['method', { type: 'scalar', column: 'lower("m"."method")', nullable: false, integer: false }],
  [
    'persistent',
    {
      type: 'scalar',
      column: `(CASE WHEN "m"."persistent" = 1 THEN 'true' ELSE 'false' END)`,
      nullable: false,
      integer: false,
    },
  ],
]);
const MONITOR_FIELDS = lookup({ monitor: MONITOR });

/** Predicate over `monitors AS m` (the caller adds `m.customer_id = ?`). */
export function monitorWhere(query: QueryNode, dialect: Dialect, now: number): RawBuilder<SqlBool> {
  return compileQuery(query, MONITOR_FIELDS, { dialect, now });
}

/** Predicate over `job_targets AS t LEFT JOIN devices AS d ON d.pk = t.device_pk`. */
export function targetWhere(query: QueryNode, dialect: Dialect, now: number): RawBuilder<SqlBool> {
  return compileQuery(query, TARGET_FIELDS, { dialect, now });
}

const conjunction = (operands: QueryNode[]): QueryNode =>
  operands.length === 1
    ? (operands[0] as QueryNode)
    : { type: 'and', operands, offset: operands[0]?.offset ?? 0 };

const disjunction = (operands: QueryNode[]): QueryNode =>
  operands.length === 1
    ? (operands[0] as QueryNode)
    : { type: 'or', operands, offset: operands[0]?.offset ?? 0 };

/** Plans one job query: job conditions stay on `jobs`, device conditions become target lookups. */
class JobQueryPlanner {
  constructor(
    // biome-ignore lint/suspicious/noExplicitAny: any store's database (the count needs no table types)
    private readonly db: Kysely<any>,
    private readonly dialect: SqlDialect,
    private readonly accountId: number,
    private readonly now: number,
    private readonly semiJoinMaxDevices: number,
    private readonly deviceKeySetMax: number,
    private readonly deviceKeySetIndexedMax: number,
  ) {}

  /** "Some target of the job, with its device and the job, satisfies `node`." */
  async plan(node: QueryNode): Promise<Predicate> {
    if (!usesScope(node, 'device')) return this.compile(node, JOB_FIELDS);
    if (node.type === 'and') {
      // Conjuncts about the job alone hold for every target or for none.
      const jobOnly = node.operands.filter((operand) => !usesScope(operand, 'device'));
      const rest = node.operands.filter((operand) => usesScope(operand, 'device'));
      // A single other operand is planned on its own (an `or` in it splits further); several must
      // hold for the same target.
      const targets =
        rest.length === 1 ? await this.plan(rest[0] as QueryNode) : await this.someTarget(conjunction(rest));
      return and([...jobOnly.map((operand) => this.compile(operand, JOB_FIELDS)), targets], this.dialect.id);
    }
    if (node.type === 'or') {
      // Some target satisfies one of the operands: each operand on its own; the device-only ones together.
      const withJob = node.operands.filter((operand) => usesScope(operand, 'job'));
      const deviceOnly = node.operands.filter((operand) => !usesScope(operand, 'job'));
      const parts = await Promise.all(withJob.map((operand) => this.plan(operand)));
      if (deviceOnly.length > 0) parts.push(await this.someTarget(disjunction(deviceOnly)));
      return or(parts, this.dialect.id);
    }
    return this.someTarget(node);
  }

  private compile(node: QueryNode, fields: FieldColumns): Predicate {
    return compileQuery(node, fields, { dialect: this.dialect.id, now: this.now });
  }

  private async someTarget(node: QueryNode): Promise<Predicate> {
    if (usesScope(node, 'job') || holdsWhenMissing(node)) {
      // The targets of deleted devices may match too: probe every target with its optional device.
      return sql<SqlBool>`EXISTS (SELECT 1 FROM job_targets t LEFT JOIN devices d ON d.pk = t.device_pk
        WHERE t.job_id = j.id AND ${this.compile(node, JOB_TARGET_FIELDS)} ${this.dialect.probeEachRow})`;
    }
    const matching = this.compile(node, DEVICE_FIELDS);
    const devices = await this.deviceKeys(matching);
    if (devices !== null) {
      if (devices.length === 0) return or([], this.dialect.id);
      return sql<SqlBool>`j.id IN (SELECT t.job_id FROM job_targets t WHERE t.device_pk IN (${sql.join(devices)}))`;
    }
    const keySet = this.dialect.deviceKeySet;
    // A tag's devices are found in its rows alone, of every account: the targets of this account's
    // jobs are this account's devices, and joining the devices to keep only those cost the set a
    // scan of them (tags = 'pump', 7,949 of 100,000 devices: 17 ms of a 31 ms page).
    const keys = oneTagCondition(node)
      ? sql`SELECT dt.device_pk FROM device_tags dt WHERE ${this.compile(node, TAG_ROW_FIELDS)}`
      : this.selectDevices(matching);
    // The estimate is asked only now, of the few conditions that reach this far: asked beside the
    // keys above, it cost a rare condition's page a statement it never used.
    if (
      keySet !== null &&
      this.deviceKeySetMax > this.semiJoinMaxDevices &&
      !(await this.tooMany(
        `estimate ${this.deviceKeySetMax}`,
        matching,
        async () => {
          const { rows, indexed } = await keySet.estimate(this.db, keys);
          return rows >= (indexed ? this.deviceKeySetIndexedMax : this.deviceKeySetMax);
        },
        // Few is kept too: the engine gathers the devices for each page, as they are then.
        true,
      ))
    ) {
      return sql<SqlBool>`EXISTS (SELECT 1 FROM job_targets t
        WHERE t.job_id = j.id AND ${keySet.holds(keys)} ${this.dialect.probeEachRow})`;
    }
    if (onlyTags(node)) {
      return sql<SqlBool>`EXISTS (SELECT 1 FROM job_targets t
        WHERE t.job_id = j.id AND ${this.compile(node, TARGET_TAG_FIELDS)} ${this.dialect.probeEachRow})`;
    }
    return sql<SqlBool>`EXISTS (SELECT 1 FROM job_targets t JOIN devices d ON d.pk = t.device_pk
      WHERE t.job_id = j.id AND ${this.compile(node, JOINED_DEVICE_FIELDS)} ${this.dialect.probeEachRow})`;
  }

  private selectDevices(devices: Predicate): RawBuilder<unknown> {
    return sql`SELECT d.pk FROM devices d WHERE d.customer_id = ${this.accountId} AND ${devices}`;
  }

  /**
   * The keys of the account's devices that satisfy `devices` when there are fewer than
   * `semiJoinMaxDevices` of them, else null. Reading them is the estimate, and the semi-join then
   * starts from them instead of finding them again.
   */
  private async deviceKeys(devices: Predicate): Promise<number[] | null> {
    const limit = this.semiJoinMaxDevices;
    let keys: number[] | null = null;
    await this.tooMany(`keys ${limit}`, devices, async () => {
      const { rows } = await sql<{ pk: number }>`${this.selectDevices(devices)} LIMIT ${limit}`.execute(
        this.db,
      );
      if (rows.length >= limit) return true;
      keys = rows.map((row) => Number(row.pk));
      return false;
    });
    return keys;
  }

  /**
   * Whether the account's devices that satisfy `devices` are too many, as `ask` (reading the
   * devices, or their estimate: `what`) says, or said last: true is kept (and false too when
   * `keepFew`), and asked again in the background once TOO_MANY_DEVICES_KEPT_MS old.
   */
  private async tooMany(
    what: string,
    devices: Predicate,
    ask: () => Promise<boolean>,
    keepFew = false,
  ): Promise<boolean> {
    const { sql: text, parameters } = this.selectDevices(devices).compile(this.db);
    const known = `${what}\n${text}\n${JSON.stringify(parameters)}`;
    const seen = tooManyDevices.get(this.db) ?? new Map<string, Verdict>();
    tooManyDevices.set(this.db, seen);
    const kept = seen.get(known);
    if (kept !== undefined && this.now >= kept.at) {
      if (this.now - kept.at >= TOO_MANY_DEVICES_KEPT_MS) {
        // Asked again behind this page, which plans as before: the pages asked for meanwhile do too.
        const at = this.now;
        seen.set(known, { at, many: kept.many });
        ask().then(
          (many) => (many || keepFew ? seen.set(known, { at, many }) : seen.delete(known)),
          () => seen.delete(known),
        );
      }
      return kept.many;
    }
    const many = await ask();
    if (many || keepFew) {
      if (seen.size >= TOO_MANY_DEVICES_KEPT) seen.clear();
      seen.set(known, { at: this.now, many });
    }
    return many;
  }
}

/** What a device condition's question answered (too many devices, or not), and when. */
interface Verdict {
  at: number;
  many: boolean;
}

/**
 * For each database (a store's connections), the device conditions found to match too many devices
 * to name their keys, and those the estimate found too many or few enough for the key set, and
 * when: for TOO_MANY_DEVICES_KEPT_MS the plan is chosen without asking again. A page of such a
 * condition then waits for one read instead of two in turn (under bench/load.ts's 200 clients,
 * each a whole queue of reads), and whatever the devices are by then, the plan it chooses (probing
 * each job's targets) finds exactly the jobs that match now. Once that time is up, the next page
 * asks again in the background and plans as before meanwhile: when every page of the condition
 * waited for the question instead, thirty-odd pages waited 150–370 ms together every 10 s under
 * that mix.
 */
const tooManyDevices = new WeakMap<object, Map<string, Verdict>>();
const TOO_MANY_DEVICES_KEPT_MS = 10_000;
const TOO_MANY_DEVICES_KEPT = 1_000;

/**
 * Predicate over `jobs AS j` (the caller adds `j.customer_id = ?`): a job matches when one of its
 * targets, with its device and the job, satisfies the query. Job conditions stay on `jobs` (its
 * indexes serve them). For a device condition it reads from `db` the account's matching devices,
 * up to SEMI_JOIN_MAX_DEVICES (`semiJoinMaxDevices` overrides it, for tests of every plan): fewer
 * than that, and the predicate names their keys (as read now) in a semi-join through the targets;
 * otherwise it probes each job's targets, in the set of their keys (gathered by the engine) where
 * the dialect has one (`deviceKeySet`; `deviceKeySetMax` overrides its bounds) and the planner
 * expects fewer than its bound.
 */
export async function jobWhere(
  // biome-ignore lint/suspicious/noExplicitAny: any store's database (the count needs no table types)
  db: Kysely<any>,
  query: QueryNode,
  dialect: SqlDialect,
  accountId: number,
  now: number,
  {
    semiJoinMaxDevices = SEMI_JOIN_MAX_DEVICES,
    deviceKeySetMax,
  }: { semiJoinMaxDevices?: number; deviceKeySetMax?: number } = {},
): Promise<RawBuilder<SqlBool>> {
  return new JobQueryPlanner(
    db,
    dialect,
    accountId,
    now,
    semiJoinMaxDevices,
    deviceKeySetMax ?? dialect.deviceKeySet?.max ?? 0,
    deviceKeySetMax ?? dialect.deviceKeySet?.indexedMax ?? 0,
  ).plan(query);
}
