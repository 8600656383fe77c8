import type { Migration } from 'kysely';
import * as initial from './001_initial.js';
import * as storeTotals from './002_store_totals.js';
import * as groupPathIndex from './003_group_path_index.js';
import * as cluster from './004_cluster.js';
import * as rollouts from './005_rollouts.js';
import * as events from './006_events.js';
import * as monitorCollation from './007_monitor_collation.js';
import * as submitTimeIndexes from './008_submit_time_indexes.js';
import * as retryCounts from './009_retry_counts.js';
import * as statusUsernameIndex from './010_status_username_index.js';
import * as deviceGroupProbeIndex from './011_device_group_probe_index.js';
import * as csvCells from './012_csv_cells.js';
import * as storeTotalsShards from './013_store_totals_shards.js';
import * as foldedTextStatistics from './014_folded_text_statistics.js';
import * as deviceGroupKeys from './015_device_group_keys.js';

/**
 * Every PostgreSQL migration, in order (its own numbering: 001 holds what SQLite's 001–003 built).
 * Add new ones at the end and never change one that has shipped.
 */
export const migrations: Record<string, Migration> = {
  '001_initial': initial,
  '002_store_totals': storeTotals,
  '003_group_path_index': groupPathIndex,
  '004_cluster': cluster,
  '005_rollouts': rollouts,
  '006_events': events,
  '007_monitor_collation': monitorCollation,
  '008_submit_time_indexes': submitTimeIndexes,
  '009_retry_counts': retryCounts,
  '010_status_username_index': statusUsernameIndex,
  '011_device_group_probe_index': deviceGroupProbeIndex,
  '012_csv_cells': csvCells,
  '013_store_totals_shards': storeTotalsShards,
  '014_folded_text_statistics': foldedTextStatistics,
  '015_device_group_keys': deviceGroupKeys,
};
