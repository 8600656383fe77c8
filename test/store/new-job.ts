import { NO_CONTROLS } from '../../src/model/rollout.js';
import type { NewJob } from '../../src/store/store.js';

/** A job for every device of the account, by alice, without rollout controls unless `changes` says. */
export const jobForAllDevices = (accountId: number, now: number, changes: Partial<NewJob> = {}): NewJob => ({
  accountId,
  username: 'alice',
  job_type: 'reboot',
  description: null,
  targets: { all: true },
  selection: { devices: [], groups: [], tags: [], query: null, all: true },
  payload: null,
  timeout: 60,
  offline_timeout: 60,
  controls: NO_CONTROLS,
  rollout_state: 'running',
  now,
  ...changes,
});
