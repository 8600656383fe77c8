import type { ColumnType, Generated } from 'kysely';

/**
 * The tables of both engines' migrations (sqlite/migrations/, postgres/migrations/) as kysely sees
 * them. Timestamps are epoch milliseconds (INTEGER, BIGINT read as numbers); JSON values (tags,
 * payload, targets, response) are text.
 */

export interface SettingsTable {
  key: string;
  value: string;
}

export interface AccountsTable {
  id: Generated<number>;
  name: string;
  created_at: number;
}

export interface UsersTable {
  id: Generated<number>;
  account_id: number;
  username: string;
  password_hash: string;
  role: string;
  created_at: number;
}

export interface ApiKeysTable {
  id: string;
  user_id: number;
  secret_hash: string;
  created_at: number;
}

export interface DevicesTable {
  pk: Generated<number>;
  id: string;
  customer_id: number;
  vendor_id: number | null;
  name: string | null;
  type: string | null;
  firmware_version: string | null;
  serial_number: string | null;
  mac: string | null;
  ip: string | null;
  public_ip: string | null;
  description: string | null;
  notes: string | null;
  contact: string | null;
  location: string | null;
  carrier: string | null;
  carrier2: string | null;
  network: string | null;
  network2: string | null;
  /** Normalized path (`/a/b`), `''` for no group. */
  group_path: Generated<string>;
  /** JSON array of strings; device_tags mirrors it for indexed lookups. */
  tags: Generated<string>;
  connection_status: Generated<string>;
  health_status: Generated<string>;
  restricted_status: Generated<string>;
  signal_percent: number | null;
  signal_percent2: number | null;
  signal_quality: number | null;
  signal_quality2: number | null;
  signal_strength: number | null;
  signal_strength2: number | null;
  last_connect: number | null;
  last_disconnect: number | null;
  last_update: number | null;
  token_hash: string;
  /** The device id as the device writes it in its topics (set when it announces itself online). */
  topic_id: string | null;
  /** When the presence message last applied was received: an older one changes nothing. */
  presence_at: number | null;
}

export interface DeviceTagsTable {
  device_pk: number;
  tag: string;
}

export interface JobsTable {
  id: Generated<number>;
  customer_id: number;
  username: string;
  job_type: string;
  job_status: string;
  description: string | null;
  job_submit_time: number;
  job_completion_time: number | null;
  target_count: number;
  progress_success: Generated<number>;
  progress_failures: Generated<number>;
  progress_canceled: Generated<number>;
  progress_pending: Generated<number>;
  /** JSON text; NULL when the job was created without a payload. */
  payload: string | null;
  /** Seconds. */
  timeout: number;
  /** Seconds. */
  offline_timeout: number;
  /** The selector as submitted, JSON text. */
  targets: string;
  /** The rollout controls as submitted (JSON text), NULL when not given (CONTRACT §9). */
  rollout: string | null;
  abort_rules: string | null;
  retry: string | null;
  schedule: string | null;
  rollout_state: Generated<string>;
  abort_reason: string | null;
  /** 1 when the rollout rules alone send this job's queued targets (it has controls, or was paused or retried). */
  governed: Generated<number>;
  /** 1 while the rollout tick has something to do for the job (partial index jobs_rollout). */
  rollout_active: Generated<number>;
  /** The earliest time of the next send: the job's pace, shared by every node. */
  next_send_at: number | null;
  /** Bumped by every send slot taken: two nodes taking one slot, one of them finds it changed. */
  send_seq: Generated<number>;
  /** Requests started (attempts sent), for the exponential ramp by `notified`. */
  notified_count: Generated<number>;
  /** Of progress_failures, the targets that timed out (abort rules tell them apart). */
  progress_timed_out: Generated<number>;
  /** Bit i set once abort rule i fired: a rule fires at most once. */
  fired_rules: Generated<number>;
  /** The node fanning the job out, until `claim_expires` unless it renews the claim. */
  claimed_by: string | null;
  claim_expires: number | null;
}

/** The nodes of the service on this store (CONTRACT §8), alive while their heartbeat is recent. */
export interface NodesTable {
  id: string;
  /** 'embedded' or 'external'. */
  broker: string;
  /** Host name and process id: a node on this host whose process is gone is known dead. */
  host: string;
  pid: number;
  started_at: number;
  heartbeat_at: number;
}

export interface JobTargetsTable {
  job_id: number;
  device_id: string;
  /** NULL once the device is deleted. */
  device_pk: number | null;
  status: Generated<string>;
  progress: Generated<number>;
  message: string | null;
  /** JSON text. */
  response: string | null;
  queued_time: number;
  start_time: number | null;
  end_time: number | null;
  /** When a pending target times out: queued_time + offline_timeout, then start_time + timeout. */
  deadline: number | null;
  /** 1 once a cancel was requested for this in-progress target (its device must be told). */
  cancel_requested: ColumnType<number, number | undefined, number>;
  /** Attempts started; a resend of the same attempt after a reconnect is not a new one. */
  attempt: Generated<number>;
  /** While the target waits queued for its retry: when it is due. */
  next_attempt_time: number | null;
  /** Retries the job's policy gave it after a `failed` attempt, and after a `timed_out` one. */
  failed_retries: Generated<number>;
  timed_out_retries: Generated<number>;
}

export interface EventsTable {
  /** From event_sequence: increasing in commit order. */
  id: number;
  uuid: string;
  customer_id: number;
  topic: string;
  object_key: string;
  /** The job of a job or target event (the live stream's `job_id` filter); NULL for devices. */
  job_id: number | null;
  operation: string;
  time: number;
  /** The object right after the change, JSON text (the model object: epoch milliseconds). */
  data: string;
}

export interface EventSequenceTable {
  id: number;
  last_id: number;
}

export interface MonitorsTable {
  id: Generated<number>;
  customer_id: number;
  type: string;
  /** JSON array of topic names. */
  topics: string;
  url: string;
  method: string;
  format: string;
  auth_token: string | null;
  /** JSON array of `Name: value` lines. */
  headers: string;
  batch_size: number;
  batch_duration: number;
  compression: string;
  /** 1 or 0. */
  persistent: number;
  secret: string | null;
  description: string | null;
  status: string;
  last_sent: number | null;
  last_sent_uuid: string | null;
  created_at: number;
  cursor_id: number;
  attempts: Generated<number>;
  next_attempt_at: number | null;
  failing_since: number | null;
  lease_owner: string | null;
  lease_until: number | null;
}

export interface Database {
  settings: SettingsTable;
  accounts: AccountsTable;
  users: UsersTable;
  api_keys: ApiKeysTable;
  devices: DevicesTable;
  device_tags: DeviceTagsTable;
  jobs: JobsTable;
  job_targets: JobTargetsTable;
  events: EventsTable;
  event_sequence: EventSequenceTable;
  monitors: MonitorsTable;
  nodes: NodesTable;
}
