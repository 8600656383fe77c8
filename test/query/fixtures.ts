import type { Device } from '../../src/model/device.js';
import type { Job, JobTarget } from '../../src/model/job.js';

/** The clock the evaluator tests run at. */
export const NOW = Date.UTC(2026, 10, 28, 17, 40, 0, 0);

/** A device with every optional field missing, plus `fields`. */
export const device = (fields: Partial<Device> = {}): Device => ({
  id: '00000000-00000000-0004F3FF-FF0123AB',
  customer_id: 1,
  vendor_id: null,
  name: null,
  type: null,
  firmware_version: null,
  serial_number: null,
  mac: null,
  ip: null,
  public_ip: null,
  description: null,
  notes: null,
  contact: null,
  location: null,
  carrier: null,
  carrier2: null,
  network: null,
  network2: null,
  group: '',
  tags: [],
  connection_status: 'disconnected',
  health_status: 'unknown',
  restricted_status: 'unrestricted',
  signal_percent: null,
  signal_percent2: null,
  signal_quality: null,
  signal_quality2: null,
  signal_strength: null,
  signal_strength2: null,
  last_connect: null,
  last_disconnect: null,
  last_update: null,
  ...fields,
});

export const job = (fields: Partial<Job> = {}): Job => ({
  id: 17,
  customer_id: 1,
  username: 'alice',
  job_type: 'reboot',
  job_status: 'in_progress',
  description: null,
  job_submit_time: NOW - 60_000,
  job_completion_time: null,
  target_count: 2,
  progress_success: 0,
  progress_failures: 0,
  progress_canceled: 0,
  progress_pending: 2,
  rollout_state: 'running',
  abort_reason: null,
  ...fields,
});

export const target = (fields: Partial<JobTarget> = {}): JobTarget => ({
  job_id: 17,
  device_id: '00000000-00000000-0004F3FF-FF0123AB',
  status: 'queued',
  progress: 0,
  message: null,
  response: null,
  queued_time: NOW - 60_000,
  start_time: null,
  end_time: null,
  attempt: 0,
  next_attempt_time: null,
  ...fields,
});
