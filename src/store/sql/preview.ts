import { type Kysely, type RawBuilder, type SqlBool, sql } from 'kysely';
import { badRequest } from '../../model/error.js';
import type { TargetPreview } from '../store.js';

/** A job body whose selector matches no device of the account: 400 for a creation and a preview. */
export const noTarget = () => badRequest('The job has no target: no device of this account matches targets');

/**
 * What a job would target: the devices (`devices d`) of the account that `where` (the selection,
 * as createJob resolves it) matches, counted with those not connected, and the first `limit` ids.
 */
export async function previewTargets(
  // biome-ignore lint/suspicious/noExplicitAny: both dialects' schemas have the devices table used here
  db: Kysely<any>,
  accountId: number,
  where: RawBuilder<SqlBool>,
  limit: number,
): Promise<TargetPreview> {
  const matching = db.selectFrom('devices as d').where('d.customer_id', '=', accountId).where(where);
  const counts = await matching
    .select([
      sql<number>`count(*)`.as('target_count'),
      sql<number>`coalesce(sum(case when d.connection_status = 'connected' then 0 else 1 end), 0)`.as(
        'offline',
      ),
    ])
    .executeTakeFirstOrThrow();
  const targetCount = Number(counts.target_count);
  if (targetCount === 0) throw noTarget();
  const rows = await matching.select('d.id').orderBy('d.id').limit(limit).execute();
  return {
    target_count: targetCount,
    list: rows.map((row) => row.id as string),
    offline: Number(counts.offline),
  };
}
