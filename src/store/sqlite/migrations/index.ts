import type { Migration } from 'kysely';
import * as initial from './001_initial.js';
import * as queryIndexes from './002_query_indexes.js';
import * as completionTimeIndex from './003_completion_time_index.js';
import * as storeTotals from './004_store_totals.js';
import * as groupPathIndex from './005_group_path_index.js';
import * as cluster from './006_cluster.js';
import * as rollouts from './007_rollouts.js';
import * as events from './008_events.js';
import * as submitTimeIndexes from './009_submit_time_indexes.js';
import * as retryCounts from './010_retry_counts.js';
import * as deviceGroupProbeIndex from './012_device_group_probe_index.js';

/**
 * Every migration, in order. Names sort in the order they apply; add new ones at the end and never
 * change one that has shipped.
 */
export const migrations: Record<string, Migration> = {
  '001_initial': initial,
  '002_query_indexes': queryIndexes,
  '003_completion_time_index': completionTimeIndex,
  '004_store_totals': storeTotals,
  '005_group_path_index': groupPathIndex,
  '006_cluster': cluster,
  '007_rollouts': rollouts,
  '008_events': events,
  '009_submit_time_indexes': submitTimeIndexes,
  '010_retry_counts': retryCounts,
  '012_device_group_probe_index': deviceGroupProbeIndex,
};
