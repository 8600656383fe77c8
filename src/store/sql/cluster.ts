import { type Kysely, sql } from 'kysely';
import type { Millis } from '../../model/job.js';
import type { JobClaim, ServiceNode } from '../store.js';
import type { SqlDialect } from './dialect.js';
import { jobChanges, recordEvents } from './events.js';
import { JOB_COLUMNS, jobFromRow } from './rows.js';
import type { Database } from './schema.js';

/**
 * The nodes of one service on one store (CONTRACT §8): their heartbeat, and the claims by which one
 * node fans a job out. A claim is taken by a guarded UPDATE … RETURNING that only one node wins,
 * renewed with the heartbeat, and taken over by another node once it expired (its node died).
 */

type Db = Kysely<Database>;

/** Records the node alive (now) and extends every claim it holds to `claim.expires`. */
export async function heartbeat(db: Db, node: ServiceNode, claim: JobClaim): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('nodes')
      .values({ ...node, started_at: claim.now, heartbeat_at: claim.now })
      .onConflict((conflict) =>
        conflict
          .column('id')
          .doUpdateSet({ broker: node.broker, host: node.host, pid: node.pid, heartbeat_at: claim.now }),
      )
      .execute();
    await trx
      .updateTable('jobs')
      .set({ claim_expires: claim.expires })
      .where('claimed_by', '=', claim.node)
      .execute();
  });
}

/** The other nodes whose heartbeat is not older than `since`. */
export async function liveNodes(db: Db, since: Millis, exceptId: string): Promise<ServiceNode[]> {
  const rows = await db
    .selectFrom('nodes')
    .select(['id', 'broker', 'host', 'pid'])
    .where('heartbeat_at', '>=', since)
    .where('id', '<>', exceptId)
    .orderBy('id')
    .execute();
  return rows.map((row) => ({ ...row, broker: row.broker === 'embedded' ? 'embedded' : 'external' }));
}

/** The node stops: its claims expire at once (the others take them over), and it is no longer alive. */
export async function leave(db: Db, nodeId: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('jobs').set({ claim_expires: 0 }).where('claimed_by', '=', nodeId).execute();
    await trx.deleteFrom('nodes').where('id', '=', nodeId).execute();
  });
}

/** Claims `new` jobs for the node, which moves them to in progress: each goes to one node only. */
export async function startNewJobs(db: Db, dialect: SqlDialect, claim: JobClaim): Promise<number[]> {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .updateTable('jobs')
      .set({ job_status: 'in_progress', claimed_by: claim.node, claim_expires: claim.expires })
      // A literal, so the partial index jobs_new serves it.
      .where('job_status', '=', sql.lit('new'))
      // The rollout tick starts a job with rollout controls, when its schedule lets it.
      .where('governed', '=', 0)
      .returning(JOB_COLUMNS)
      .execute();
    await recordEvents(trx, dialect, claim.now, jobChanges('UPDATE', rows.map(jobFromRow)));
    return rows.map((row) => row.id);
  });
}

/**
 * Takes over up to `limit` in-progress jobs whose claim expired (their node died): the guarded
 * UPDATE re-checks the expiry, so of two nodes trying at once one wins each job.
 */
export async function takeOverJobs(
  db: Db,
  dialect: SqlDialect,
  claim: JobClaim,
  limit: number,
): Promise<number[]> {
  return db.transaction().execute(async (trx) => {
    const expired = await trx
      .selectFrom('jobs as j')
      .select('j.id')
      .where('j.claimed_by', 'is not', null)
      .where('j.claim_expires', '<', claim.now)
      .orderBy('j.claim_expires')
      .limit(limit)
      .modifyEnd(dialect.claimLock('j'))
      .execute();
    if (expired.length === 0) return [];
    const rows = await trx
      .updateTable('jobs')
      .set({ claimed_by: claim.node, claim_expires: claim.expires })
      .where(
        dialect.inIntegers(
          sql.ref('id'),
          expired.map((row) => row.id),
        ),
      )
      .where('claimed_by', 'is not', null)
      .where('claim_expires', '<', claim.now)
      .returning('id')
      .execute();
    return rows.map((row) => row.id).sort((a, b) => a - b);
  });
}

/**
 * Buries the nodes whose heartbeat is older than `since` (they died without leaving): once, for one
 * node alone (the guarded DELETE), which then claims the dead nodes' jobs (without waiting for their
 * claims to expire) and every in-progress job nobody fans out. Returns the buried nodes and every
 * in-progress job, the dead nodes' first: their in-progress requests are sent again, whichever node
 * fans them out (a dead node takes the device statuses it had not stored with it, of any job; a
 * device answers a repeated request with its result).
 */
export async function buryDeadNodes(
  db: Db,
  since: Millis,
  claim: JobClaim,
): Promise<{ nodes: string[]; jobs: number[] }> {
  return db.transaction().execute(async (trx) => {
    const buried = await trx.deleteFrom('nodes').where('heartbeat_at', '<', since).returning('id').execute();
    if (buried.length === 0) return { nodes: [], jobs: [] };
    const taken = await trx
      .updateTable('jobs')
      .set({ claimed_by: claim.node, claim_expires: claim.expires })
      .where(
        'claimed_by',
        'in',
        buried.map((row) => row.id),
      )
      .returning('id')
      .execute();
    await trx
      .updateTable('jobs')
      .set({ claimed_by: claim.node, claim_expires: claim.expires })
      // A literal, so the partial index jobs_in_progress serves it.
      .where('job_status', '=', sql.lit('in_progress'))
      .where('claimed_by', 'is', null)
      .execute();
    const inProgress = await trx
      .selectFrom('jobs')
      .select('id')
      .where('job_status', '=', sql.lit('in_progress'))
      .orderBy('id')
      .execute();
    // the dead nodes' own jobs first: they may hold targets nobody sent yet
    const first = taken.map((row) => row.id).sort((x, y) => x - y);
    const firstSet = new Set(first);
    return {
      nodes: buried.map((row) => row.id).sort(),
      jobs: [...first, ...inProgress.map((row) => row.id).filter((id) => !firstSet.has(id))],
    };
  });
}

/** The oldest heartbeat of the other nodes (null: there are none): when the first of them may be dead. */
export async function oldestHeartbeat(db: Db, exceptId: string): Promise<Millis | null> {
  const row = await db
    .selectFrom('nodes')
    .select((eb) => eb.fn.min('heartbeat_at').as('oldest'))
    .where('id', '<>', exceptId)
    .executeTakeFirst();
  return row?.oldest == null ? null : Number(row.oldest);
}

/** The node finished fanning the job out: nobody needs to take it over. */
export async function releaseJob(db: Db, jobId: number, nodeId: string): Promise<void> {
  await db
    .updateTable('jobs')
    .set({ claimed_by: null, claim_expires: null })
    .where('id', '=', jobId)
    .where('claimed_by', '=', nodeId)
    .execute();
}
