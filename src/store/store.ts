import type { Account, ApiKey, Role, User } from '../model/account.js';
import type {
  ConnectionStatus,
  DEVICE_REPORTED_FIELDS,
  Device,
  DeviceGroup,
  DeviceInput,
} from '../model/device.js';
import type { EventTopic, StoredEvent } from '../model/event.js';
import type {
  Job,
  JobDetail,
  JobStatus,
  JobTarget,
  JobType,
  Millis,
  ReportedStatus,
  TargetSelector,
} from '../model/job.js';
import type { LeasedMonitor, Monitor, MonitorSettings, MonitorStatus } from '../model/monitor.js';
import type {
  AbortRule,
  EndBehavior,
  RetryPolicy,
  RolloutControls,
  RolloutState,
  TargetRetries,
} from '../model/rollout.js';
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

/**
 * A page as JSON: its items (at most `limit`) as objects of `fields`, those of `timestamps` in ISO
 * 8601, a missing value `null`.
 */
export interface JsonPageRequest extends ListRequest {
  fields: readonly string[];
  timestamps: ReadonlySet<string>;
}

export interface JsonPage {
  /** The items, one JSON array in UTF-8. */
  json: Uint8Array;
  count: number;
  /** The position of the last item, when more follow; null on the last page. */
  next: Keyset | null;
}

export interface StreamRequest {
  accountId: number;
  query: Query | null;
  order: Order;
}

/** A CSV export: the stream's items as CSV records (RFC 4180, CRLF after each) of `fields`, in order. */
export interface CsvRequest extends StreamRequest {
  fields: readonly string[];
  /** Those of `fields` that hold timestamps, written in ISO 8601. */
  timestamps: ReadonlySet<string>;
}

/**
 * The records of a CSV export, a batch at a time (no header): read from a separate read connection
 * in keyset order, never holding up other requests, and encoded where they were read (SQLite: in
 * its read worker; PostgreSQL: by its COPY, as UTF-8), with the next batch read while this one is
 * written.
 */
export type CsvRecords = AsyncIterable<string | Uint8Array>;

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

/**
 * Which devices a new job targets: the union of the listed ids (upper-case), the groups with their
 * subgroups (normalized paths), the tags, the parsed device query, or every device of the account.
 */
export interface DeviceSelection {
  devices: string[];
  groups: string[];
  tags: string[];
  query: Query | null;
  all: boolean;
}

export interface NewJob {
  accountId: number;
  username: string;
  job_type: JobType;
  description: string | null;
  /** The selector as submitted, kept with the job. */
  targets: TargetSelector;
  /** The same selector validated and normalized: what the store resolves to devices. */
  selection: DeviceSelection;
  payload: unknown;
  timeout: number;
  offline_timeout: number;
  /** The rollout controls as submitted (CONTRACT §9), and the rollout state they start in. */
  controls: RolloutControls;
  rollout_state: RolloutState;
  now: Millis;
}

/** What a job body would target: how many devices, the first ids ascending, how many are offline. */
export interface TargetPreview {
  target_count: number;
  list: string[];
  offline: number;
}

/** One id of a by-id cancel or delete: the job after the change, or why it was left alone. */
export type ByIdResult<T> =
  | { id: number; ok: true; value: T }
  | { id: number; ok: false; status: number; message: string };

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
  /** Which attempt this is (a resend after a reconnect repeats the attempt). */
  attempt: number;
  /** The device id as the device writes it in its topics. */
  topic_id: string;
}

/** A node of the service (CONTRACT §8) and the broker its devices use. */
export interface ServiceNode {
  id: string;
  broker: 'embedded' | 'external';
  host: string;
  pid: number;
}

/** A claim `node` takes or renews at `now`, lasting until `expires` unless renewed. */
export interface JobClaim {
  node: string;
  now: Millis;
  expires: Millis;
}

/** What wakes the dispatchers of every node on the store: `jobs`, a job was created. */
export type WakeUp = 'jobs';

/** Wake-ups across the nodes of one store: PostgreSQL LISTEN/NOTIFY, in process on SQLite. */
export interface Notifier {
  notify(wakeUp: WakeUp): Promise<void>;
  /** Calls `listener` for every wake-up from now on (this node's own too); resolves to stop listening. */
  listen(listener: (wakeUp: WakeUp) => void): Promise<() => Promise<void>>;
}

export interface StatusReport {
  status: ReportedStatus;
  progress?: number;
  message?: string;
  response?: unknown;
}

// ---- events and monitors ----

/** Events of one account after `afterId`, in commit order, optionally of some topics, a job, a time range. */
export interface EventRequest {
  accountId: number;
  afterId: number;
  topics?: readonly EventTopic[] | undefined;
  jobId?: number | undefined;
  /** Inclusive. */
  from?: Millis | undefined;
  /** Exclusive. */
  until?: Millis | undefined;
  limit: number;
}

/** A change of a monitor's settings; `status` too (a client sets active or inactive). */
export type MonitorPatch = Partial<MonitorSettings> & { status?: MonitorStatus };

/** What the node holding a monitor's lease writes after a try. */
export type DeliveryState = Pick<
  LeasedMonitor,
  'cursor_id' | 'attempts' | 'next_attempt_at' | 'failing_since' | 'last_sent' | 'last_sent_uuid'
> & { disable: boolean };

/** Called with the duration of every statement the store runs (milliseconds) and its SQL: for /metrics, and benchmarks. */
export type OnQuery = (durationMillis: number, sql: string) => void;

/** What a change of targets did that its caller acts on once it committed. */
export interface Settled {
  /** The jobs it finished (complete, failed or canceled). */
  finished: Job[];
  /** The devices an abort rule's cancel must tell now (its in-progress targets). */
  cancels: CancelNotice[];
}

/** Told, once committed, of what a change of targets settled (only when it finished or aborted a job). */
export type OnSettled = (settled: Settled) => void;

/** Store-wide totals for /metrics; targets by progress bucket (`failed` includes `timed_out`). */
export interface StoreTotals {
  jobs: Record<JobStatus, number>;
  targets: { successful: number; failed: number; canceled: number; pending: number };
  devicesConnected: number;
}

// ---- rollouts (CONTRACT §9) ----

/**
 * The rules a target's end is judged by, in the transaction that ends it (src/jobs/rollout/ has
 * them; the dispatcher hands them to the store, which sits below it).
 */
export interface SettleRules {
  /** When a target that ended this way, having used `target`'s retries, is tried again, or null. */
  nextAttemptTime(
    policy: RetryPolicy | null,
    status: 'failed' | 'timed_out',
    target: TargetRetries,
    now: Millis,
  ): Millis | null;
  /** The first abort rule, not fired before, that fires on these counts of ended targets. */
  firedAbortRule(
    rules: readonly AbortRule[] | null,
    ended: { successful: number; failed: number; timed_out: number },
    firedMask: number,
  ): { index: number; rule: AbortRule; reason: string } | null;
}

/** A job the rollout tick looks at, with what its rules read. */
export interface RolloutJob extends RolloutControls {
  id: number;
  job_status: JobStatus;
  rollout_state: RolloutState;
  next_send_at: Millis | null;
  send_seq: number;
  notified_count: number;
  progress_success: number;
  /** Targets in progress (counted only when max_in_flight limits the job, else 0). */
  in_flight: number;
}

/** A send slot of a rollout job: taken only if nobody took one since `send_seq` was read. */
export interface SendSlot {
  jobId: number;
  sendSeq: number;
  /** At most this many requests. */
  limit: number;
  /** The job's next_send_at once `sent` requests went out. */
  nextSendAt(sent: number): Millis | null;
  /** Queued targets after this device id first (the rest on the next round). */
  afterDeviceId: string;
  /** Devices with as many requests in flight as they may have. */
  skipDeviceIds: string[];
}

export interface RolloutStore {
  /** The jobs with something for the rollout tick to do (started or not), at most `limit`. */
  rolloutJobs(limit: number): Promise<RolloutJob[]>;
  /**
   * Moves a job's rollout state from `from` to `to` if it is still `from` and the job unfinished; a
   * `new` job becomes in progress unless `to` is `scheduled`. false when something else changed it.
   */
  moveRolloutState(jobId: number, from: RolloutState, to: RolloutState, now: Millis): Promise<boolean>;
  /**
   * In one transaction: takes the slot (the job still running and nobody took one since), starts
   * up to `limit` due queued targets of connected devices, and moves the job's pace by how many.
   */
  takeRolloutRequests(slot: SendSlot, now: Millis): Promise<OutgoingRequest[]>;
  /** The job's end_time came: stop (queued targets canceled), cancel, or cancel with force. */
  endRollout(jobId: number, behavior: EndBehavior, now: Millis): Promise<CancelNotice[]>;
  /**
   * A finished job leaves the tick (its devices were told when it was canceled, by a user or, once
   * committed, by the transaction whose abort rule fired: Settled.cancels).
   */
  closeRollout(jobId: number): Promise<void>;
  pauseJob(accountId: number, id: number): Promise<ByIdResult<Job>>;
  resumeJob(accountId: number, id: number): Promise<ByIdResult<Job>>;
  /** undefined when the job does not exist in this account. */
  retryTargets(
    accountId: number,
    jobId: number,
    query: Query | null,
    now: Millis,
  ): Promise<ByQueryResult | undefined>;
  cancelTargets(
    accountId: number,
    jobId: number,
    query: Query | null,
    force: boolean,
    now: Millis,
  ): Promise<(ByQueryResult & { notices: CancelNotice[] }) | undefined>;
}

export interface Store extends DispatchStore {
  readonly dialect: 'sqlite' | 'postgres';
  close(): Promise<void>;

  /** A named secret kept in the store (e.g. the cursor signing key), created on first use. */
  secret(name: string): Promise<Buffer>;

  // accounts, users, keys
  ensureAccount(name: string, now: Millis): Promise<Account>;
  /** 409 if the username is taken. */
  createUser(input: {
    accountId: number;
    username: string;
    passwordHash: string;
    role: Role;
    now: Millis;
  }): Promise<User>;
  findUser(username: string): Promise<StoredUser | undefined>;
  listUsers(accountName?: string): Promise<User[]>;
  removeUser(username: string): Promise<boolean>;
  countUsers(): Promise<number>;
  /** What /metrics reports of the store: counted from the jobs' counters, not from their targets. */
  totals(): Promise<StoreTotals>;
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
  /** Those of `ids` (stored, upper-case) that are devices of the account. */
  existingDeviceIds(accountId: number, ids: string[]): Promise<string[]>;
  /** The account's groups: every path a device's group has or lies under, its devices counted with those below. */
  listGroups(request: ListRequest): Promise<DeviceGroup[]>;
  exportGroups(request: CsvRequest): CsvRecords;
  exportDevices(request: CsvRequest): CsvRecords;

  // jobs
  /** Resolves the selector to devices (400 for an unknown device or no target) and inserts job and targets. */
  createJob(job: NewJob): Promise<JobDetail>;
  /** Resolves the selector as createJob does (same 400s), inserting nothing; lists at most `limit` ids. */
  previewTargets(
    accountId: number,
    selection: DeviceSelection,
    now: Millis,
    limit: number,
  ): Promise<TargetPreview>;
  /**
   * The job's queued targets whose devices are disconnected now fail at once with `message` (one
   * guarded UPDATE; the job settles as usual). Returns their device ids.
   */
  failDisconnectedTargets(accountId: number, jobId: number, message: string, now: Millis): Promise<string[]>;
  getJob(accountId: number, id: number): Promise<JobDetail | undefined>;
  listJobs(request: ListRequest): Promise<Job[]>;
  /**
   * listJobs' page as JSON, encoded where it is read (SQLite: in its read worker): the page most
   * clients ask for, written without an object per job on the event loop.
   */
  listJobsJson(request: JsonPageRequest): Promise<JsonPage>;
  /** undefined when the job does not exist in this account. */
  listTargets(jobId: number, request: ListRequest): Promise<JobTarget[] | undefined>;
  streamTargets(jobId: number, request: StreamRequest): AsyncIterable<JobTarget[]>;
  exportJobs(request: CsvRequest): CsvRecords;
  /** Nothing when the job does not exist in this account. */
  exportTargets(jobId: number, request: CsvRequest): CsvRecords;
  cancelJobs(accountId: number, ids: number[], force: boolean, now: Millis): Promise<CancelResult>;
  cancelJobsByQuery(
    accountId: number,
    query: Query,
    force: boolean,
    now: Millis,
  ): Promise<ByQueryResult & { notices: CancelNotice[] }>;
  deleteJobs(accountId: number, ids: number[]): Promise<ByIdResult<number>[]>;
  deleteJobsByQuery(accountId: number, query: Query): Promise<ByQueryResult>;

  // events (the outbox written with every change) and monitors
  listEvents(request: EventRequest): Promise<StoredEvent[]>;
  /** The id of the last event written: what a new monitor or stream starts after. */
  lastEventId(): Promise<number>;
  /** The id of the account's event with this uuid, while it is kept. */
  findEvent(accountId: number, uuid: string): Promise<number | undefined>;
  /** Removes the events nobody may read any more; returns how many. */
  pruneEvents(now: Millis): Promise<number>;
  createMonitor(accountId: number, settings: MonitorSettings, now: Millis): Promise<Monitor>;
  getMonitor(accountId: number, id: number): Promise<Monitor | undefined>;
  listMonitors(request: ListRequest): Promise<Monitor[]>;
  /** `status: 'active'` also clears the failures, so a disabled monitor starts again at once. */
  updateMonitor(
    accountId: number,
    id: number,
    patch: MonitorPatch,
    now: Millis,
  ): Promise<Monitor | undefined>;
  deleteMonitor(accountId: number, id: number): Promise<boolean>;
  /**
   * Takes (or renews) the lease of every active monitor whose lease is free, expired or already
   * `owner`'s, until `now + leaseMs`; returns them. One node sends each monitor's batches.
   */
  leaseMonitors(owner: string, now: Millis, leaseMs: number): Promise<LeasedMonitor[]>;
  /** Saves a try's outcome, if `owner` still holds the lease (false otherwise). */
  saveDelivery(id: number, owner: string, state: DeliveryState): Promise<boolean>;
}

/** The fields a device reported about itself on `fleetjobs/<id>/state`, already validated. */
export type DeviceState = Partial<Pick<Device, (typeof DEVICE_REPORTED_FIELDS)[number]>>;

/** A state message of a device. */
export interface DeviceStateUpdate {
  device_id: string;
  state: DeviceState;
}

/** A presence message of a device, received at `at` (the order presence applies in, CONTRACT §8). */
export interface PresenceUpdate {
  device_id: string;
  status: ConnectionStatus;
  at: Millis;
  /** How the device wrote its id in the topic. */
  topic_id: string;
  /** The broker's retained presence, replayed at a subscription. */
  replay: boolean;
}

/** A status message of a device about one of its targets. */
export interface StatusUpdate {
  device_id: string;
  job_id: number;
  report: StatusReport;
}

/**
 * What the dispatcher needs: device sessions, target transitions, timeouts. Device ids are the
 * stored (upper-case) ids. Every target change is one transaction with its job's counts.
 */
export interface DispatchStore extends Notifier, RolloutStore {
  /** Resolves when the store answers (readiness). */
  ping(): Promise<void>;
  findDeviceCredentials(id: string): Promise<DeviceCredentials | undefined>;
  /** Every device's credentials in id order, after `afterId`, at most `limit` (the broker's logins). */
  listDeviceCredentials(afterId: string, limit: number): Promise<DeviceCredentials[]>;
  /** Marks every connected device disconnected (start of the embedded broker, the only one). */
  disconnectAll(now: Millis): Promise<void>;
  /**
   * Presence messages, in the order received, in one transaction (one statement unless a device
   * repeats). Each is received at `at`: `connected` sets `last_connect` and the device's topic
   * spelling; `disconnected` sets `last_disconnect` only when the device was connected (a Will
   * after a closed connection changes nothing more). Per message false for an unknown device, or
   * when a presence message received after `at` was already applied (a late one changes nothing).
   * A `replay` (the broker's retained presence) of `connected` changes nothing on a device known
   * connected.
   */
  setConnections(updates: readonly PresenceUpdate[]): Promise<boolean[]>;
  /**
   * Of the devices, those with a pending target (a request to send, or a cancel to deliver): the
   * ones a batch of devices that came online has something for.
   */
  devicesWithRequests(deviceIds: readonly string[]): Promise<string[]>;
  /** How the devices write their ids in topics, by stored id (those that connected once). */
  deviceTopicIds(deviceIds: string[]): Promise<Map<string, string>>;
  /** Records the node alive and renews its claims (a heartbeat). */
  heartbeat(node: ServiceNode, claim: JobClaim): Promise<void>;
  /** The other nodes with a heartbeat at `since` or later. */
  liveNodes(since: Millis, exceptId: string): Promise<ServiceNode[]>;
  /** The node stops: its claims are released and it is no longer alive. */
  leave(nodeId: string): Promise<void>;
  /** Takes over in-progress jobs whose claim expired (their node died), at most `limit`. */
  takeOverJobs(claim: JobClaim, limit: number): Promise<number[]>;
  /**
   * Removes the nodes with a heartbeat before `since` (dead), once; the node that did claims their
   * jobs and every unclaimed in-progress job. Returns the nodes it buried and every in-progress job
   * (none when nobody was buried): their in-progress requests are sent again, and presence the dead
   * nodes held is read again.
   */
  buryDeadNodes(since: Millis, claim: JobClaim): Promise<{ nodes: string[]; jobs: number[] }>;
  /** The oldest heartbeat of the nodes other than `exceptId`, or null. */
  oldestHeartbeat(exceptId: string): Promise<Millis | null>;
  /** Releases the node's claim on a job it finished fanning out. */
  releaseJob(jobId: number, nodeId: string): Promise<void>;
  /**
   * Applies the fields devices reported about themselves and sets `last_update`, in order, in one
   * transaction; per state, whether its device exists.
   */
  updateDeviceStates(updates: readonly DeviceStateUpdate[], now: Millis): Promise<boolean[]>;
  /** Moves `new` jobs to `in_progress`, claimed for the node; returns their ids. */
  startNewJobs(claim: JobClaim): Promise<number[]>;
  /**
   * What to publish to a device that announced itself, in job order after `afterJobId`, at most
   * `limit`: its queued targets of in-progress jobs become in progress (their timeout starts), its
   * in-progress targets without a pending cancel are sent again (unless `resend` is false).
   */
  takeRequests(
    deviceId: string,
    now: Millis,
    limit: number,
    afterJobId: number,
    resend?: boolean,
  ): Promise<OutgoingRequest[]>;
  /**
   * Queued targets of connected devices for an in-progress job, in device order after
   * `afterDeviceId`, moved to in progress, at most `limit`; devices in `skipDeviceIds` (those with
   * as many requests in flight as they may have) are passed over. With `resend` (a job taken over
   * from a dead node), in-progress targets without a pending cancel are sent again too.
   */
  takeJobRequests(
    jobId: number,
    now: Millis,
    limit: number,
    afterDeviceId: string,
    skipDeviceIds?: string[],
    resend?: boolean,
  ): Promise<OutgoingRequest[]>;
  /** Cancels still to deliver to a device: its in-progress targets with a cancel requested. */
  pendingCancels(deviceId: string): Promise<CancelNotice[]>;
  /**
   * Applies status messages in order, in one transaction. Idempotent: a report on a terminal
   * target, or from a device that is no target of the job, changes nothing (false at its index).
   */
  applyStatuses(
    updates: StatusUpdate[],
    now: Millis,
    rules?: SettleRules,
    onSettled?: OnSettled,
  ): Promise<boolean[]>;
  /** Expires up to `limit` targets past their deadline into `timed_out`; returns how many. */
  expireTargets(now: Millis, limit: number, rules?: SettleRules, onSettled?: OnSettled): Promise<number>;
  /** The earliest deadline of a pending target, to schedule the next expiry. */
  nextDeadline(): Promise<Millis | null>;
}
