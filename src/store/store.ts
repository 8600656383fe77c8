import type { Account, ApiKey, Role, User } from '../model/account.js';
import type { ConnectionStatus, Device, DeviceInput } from '../model/device.js';
import type {
  Job,
  JobDetail,
  JobTarget,
  JobType,
  Millis,
  ReportedStatus,
  TargetSelector,
} from '../model/job.js';
import type { Query } from '../query/index.js';

/**
 * The one interface every store implements (SQLite now, PostgreSQL next). Nothing outside
 * `src/store/<dialect>/` knows which one runs. Every method that changes jobs or targets is one
 * transaction, so a job's counts always agree with its targets. Account ids scope every call that
 * a request makes: another account's objects behave exactly like missing ones.
 */

export type SortDirection = 'asc' | 'desc';
export type SortValue = string | number | null;

export interface Order {
  field: string;
  direction: SortDirection;
}

/** A keyset position: the sort value of the last item seen and its tie-break key (`id` / `device_id`). */
export interface Keyset {
  value: SortValue;
  key: string | number;
}

export interface ListRequest {
  accountId: number;
  query: Query | null;
  order: Order;
  after: Keyset | null;
  limit: number;
}

export interface StreamRequest {
  accountId: number;
  query: Query | null;
  order: Order;
}

// ---- accounts, users, keys ----

export interface StoredUser extends User {
  password_hash: string;
}

export interface StoredApiKey {
  id: string;
  secret_hash: string;
  user: User;
}

// ---- devices ----

export interface NewDevice extends DeviceInput {
  id: string;
  token_hash: string;
}

export interface DeviceCredentials {
  id: string;
  customer_id: number;
  token_hash: string;
}

// ---- jobs ----

export interface NewJob {
  accountId: number;
  username: string;
  job_type: JobType;
  description: string | null;
  targets: TargetSelector;
  /** The parsed `targets.query`, when there is one. */
  targetQuery: Query | null;
  payload: unknown;
  timeout: number;
  offline_timeout: number;
  now: Millis;
}

/** One id of a by-id cancel or delete: the job after the change, or why it was left alone. */
export type ByIdResult<T> = { id: number; ok: true; value: T } | { id: number; ok: false; status: number; message: string };

/** An in-progress target whose device must be told to cancel. */
export interface CancelNotice {
  job_id: number;
  device_id: string;
  force: boolean;
}

export interface CancelResult {
  results: ByIdResult<Job>[];
  notices: CancelNotice[];
}

export interface ByQueryResult {
  count: number;
  skipped: number;
}

// ---- dispatch ----

/** A request to publish to a device: its target just became (or still is) in progress. */
export interface OutgoingRequest {
  job_id: number;
  device_id: string;
  job_type: JobType;
  payload: unknown;
  timeout: number;
}

export interface StatusReport {
  status: ReportedStatus;
  progress?: number;
  message?: string;
  response?: unknown;
}

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;

  /** A named secret kept in the store (e.g. the cursor signing key), created on first use. */
  secret(name: string): Promise<Buffer>;

  // accounts, users, keys
  ensureAccount(name: string, now: Millis): Promise<Account>;
  /** 409 if the username is taken. */
  createUser(input: { accountId: number; username: string; passwordHash: string; role: Role; now: Millis }): Promise<User>;
  findUser(username: string): Promise<StoredUser | undefined>;
  listUsers(accountName?: string): Promise<User[]>;
  removeUser(username: string): Promise<boolean>;
  countUsers(): Promise<number>;
  createApiKey(input: { id: string; userId: number; secretHash: string; now: Millis }): Promise<ApiKey>;
  findApiKey(id: string): Promise<StoredApiKey | undefined>;
  listApiKeys(username: string): Promise<ApiKey[]>;
  revokeApiKey(id: string): Promise<boolean>;

  // devices
  /** One transaction: 409 naming the id if any id exists in any account, and nothing is created. */
  createDevices(accountId: number, devices: NewDevice[]): Promise<Device[]>;
  getDevice(accountId: number, id: string): Promise<Device | undefined>;
  updateDevice(accountId: number, id: string, patch: DeviceInput): Promise<Device | undefined>;
  /** Removes the device; its queued/in-progress targets fail with `device deleted`, their jobs settle. */
  deleteDevice(accountId: number, id: string, now: Millis): Promise<boolean>;
  setDeviceToken(accountId: number, id: string, tokenHash: string): Promise<boolean>;
  listDevices(request: ListRequest): Promise<Device[]>;
  /** Batches from a separate read connection, in keyset order, never holding up other requests. */
  streamDevices(request: StreamRequest): AsyncIterable<Device[]>;

  // jobs
  /** Resolves the selector to devices (400 for an unknown device or no target) and inserts job and targets. */
  createJob(job: NewJob): Promise<JobDetail>;
  getJob(accountId: number, id: number): Promise<JobDetail | undefined>;
  listJobs(request: ListRequest): Promise<Job[]>;
  streamJobs(request: StreamRequest): AsyncIterable<Job[]>;
  /** undefined when the job does not exist in this account. */
  listTargets(jobId: number, request: ListRequest): Promise<JobTarget[] | undefined>;
  streamTargets(jobId: number, request: StreamRequest): AsyncIterable<JobTarget[]>;
  cancelJobs(accountId: number, ids: number[], force: boolean, now: Millis): Promise<CancelResult>;
  cancelJobsByQuery(
    accountId: number,
    query: Query,
    force: boolean,
    now: Millis,
  ): Promise<ByQueryResult & { notices: CancelNotice[] }>;
  deleteJobs(accountId: number, ids: number[]): Promise<ByIdResult<number>[]>;
  deleteJobsByQuery(accountId: number, query: Query): Promise<ByQueryResult>;

  // dispatch (devices over MQTT)
  findDeviceCredentials(id: string): Promise<DeviceCredentials | undefined>;
  /** Marks every device disconnected (service start with the embedded broker). */
  disconnectAll(now: Millis): Promise<void>;
  setConnection(deviceId: string, status: ConnectionStatus, now: Millis): Promise<void>;
  /** Applies the fields a device may report about itself and sets `last_update`. */
  updateDeviceState(deviceId: string, state: Record<string, unknown>, now: Millis): Promise<void>;
  /** Moves `new` jobs to `in_progress`; returns their ids. */
  startNewJobs(now: Millis): Promise<number[]>;
  /**
   * Everything to publish to a connected device: its queued targets become in progress (timeout
   * starts), its in-progress ones are sent again. Limited to `limit` requests per call.
   */
  takeRequests(deviceId: string, now: Millis, limit: number): Promise<OutgoingRequest[]>;
  /** Queued targets of connected devices for the given job, moved to in progress, at most `limit`. */
  takeJobRequests(jobId: number, now: Millis, limit: number): Promise<OutgoingRequest[]>;
  /** Cancels still to deliver to a device (in-progress targets of canceled jobs). */
  pendingCancels(deviceId: string): Promise<CancelNotice[]>;
  /** Idempotent: a report on a terminal target, or from a device that is no target, changes nothing (false). */
  applyStatus(deviceId: string, jobId: number, report: StatusReport, now: Millis): Promise<boolean>;
  /** Expires queued targets past `offline_timeout` and in-progress ones past `timeout`; returns how many. */
  expireTargets(now: Millis): Promise<number>;
  /** The earliest deadline of a pending target, to schedule the next expiry. */
  nextDeadline(): Promise<Millis | null>;
}
