import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { isTerminalTarget, TARGET_STATUSES } from '../../model/job.js';

/** The statuses of a target that may still change: queued and in progress. */
const PENDING_STATUSES = TARGET_STATUSES.filter((status) => !isTerminalTarget(status));

const PENDING_LIST = sql.raw(`(${PENDING_STATUSES.map((status) => `'${status}'`).join(', ')})`);

/**
 * `column IN ('queued', 'in_progress')` with the statuses written as literals, never parameters: a
 * planner uses the partial index `job_targets_pending … WHERE status IN ('queued', 'in_progress')`
 * only when the statement's own terms imply its WHERE. With bound parameters SQLite (and
 * PostgreSQL's generic plans) scanned every target instead.
 */
export const isPending = (column: string): RawBuilder<SqlBool> =>
  sql<SqlBool>`${sql.ref(column)} in ${PENDING_LIST}`;
