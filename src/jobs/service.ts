import { EventEmitter } from 'node:events';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import {
  DEVICE_ID_PATTERN,
  type Device,
  type DeviceInput,
  HEALTH_STATUSES,
  normalizeDeviceId,
  normalizeGroup,
  RESTRICTED_STATUSES,
} from '../model/device.js';
import { AppError, badRequest, notFound } from '../model/error.js';
import {
  DEFAULT_OFFLINE_TIMEOUT_SECONDS,
  DEFAULT_TIMEOUT_SECONDS,
  JOB_TYPES,
  type Job,
  type JobDetail,
  type JobType,
  MAX_PAYLOAD_BYTES,
  type TargetSelector,
} from '../model/job.js';
import { parseQuery, type Query } from '../query/index.js';
import { hashDeviceToken, randomSecret } from '../security/hashing.js';
import type {
  ByIdResult,
  ByQueryResult,
  CancelNotice,
  DeviceSelection,
  NewDevice,
  NewJob,
  Store,
  TargetPreview,
} from '../store/store.js';
import { type ControlsInput, checkControls } from './rollout/controls.js';
import { rolloutStateAt } from './rollout/state.js';

export const MAX_DEVICES_PER_REQUEST = 10_000;
/** How many device ids a target preview lists (the first ones, ascending). */
export const PREVIEW_LIST_SIZE = 1000;
/** The longest timeout a job may ask for (seconds): deadlines stay well inside safe integers. */
const MAX_TIMEOUT_SECONDS = 2_147_483_647;
/**
 * The deepest nesting of arrays and objects a payload may have: JSON.stringify recurses, and a
 * deeper payload (a few thousand levels fit in 64 KiB) would overflow the stack wherever it is written.
 */
const MAX_PAYLOAD_DEPTH = 512;
/** Hashing a device token takes ~60 µs: yield between chunks so a batch never blocks others long. */
const TOKEN_HASH_CHUNK = 250;

/** What the rest of the service (the dispatcher) hears about changes made through the API. */
export interface JobServiceEvents {
  'job-created': [job: JobDetail];
  /** In-progress targets whose devices must be told to cancel. */
  'jobs-canceled': [notices: CancelNotice[]];
  /** New devices with their tokens (an external broker's logins are kept in sync). */
  'devices-created': [logins: DeviceLogin[]];
  'device-removed': [deviceId: string];
  /** A job may send again: resumed, or targets of it put back to queued. */
  'job-resumed': [jobId: number];
  /** The device's token changed: a session opened with the old one must end. */
  'device-token-changed': [deviceId: string, token: string];
}

/** A device's MQTT login: its id and token. */
export interface DeviceLogin {
  id: string;
  token: string;
}

export type DeviceCreateInput = DeviceInput & { id: string; device_token?: string };

export interface JobCreateInput extends ControlsInput {
  job_type: JobType;
  description?: string | null;
  targets: TargetSelector;
  payload?: unknown;
  timeout?: number;
  offline_timeout?: number;
}

const SELECTOR_KEYS = ['devices', 'groups', 'tags', 'query', 'all'] as const;

/**
 * The rules of jobs and devices that do not depend on the transport: what may be created, what a
 * cancel or delete does, and which events the dispatcher hears. Shapes and types of request bodies
 * are checked by the API before they get here; the meaning of values is checked here.
 */
export class JobService extends EventEmitter<JobServiceEvents> {
  /** Per job, who waits for its targets to change. */
  readonly #watchers = new Map<number, Set<() => void>>();

  constructor(
    readonly store: Store,
    private readonly now: () => number = Date.now,
  ) {
    super();
  }

  // ---- devices ----

  async createDevices(
    accountId: number,
    inputs: DeviceCreateInput[],
  ): Promise<(Device & { device_token: string })[]> {
    if (inputs.length === 0) throw badRequest('No device given');
    if (inputs.length > MAX_DEVICES_PER_REQUEST) {
      throw badRequest(
        `At most ${MAX_DEVICES_PER_REQUEST} devices may be created in one request, not ${inputs.length}`,
      );
    }
    const prepared = inputs.map((input, index) => {
      const where = inputs.length > 1 ? ` (device ${index + 1})` : '';
      const id = checkDeviceId(input.id, where);
      const { device_token: given, id: _id, ...fields } = input;
      const token = given === undefined ? randomSecret() : checkToken(given, where);
      return { id, token, fields: normalizeDeviceInput(fields, where) };
    });
    const seen = new Set<string>();
    for (const { id } of prepared) {
      if (seen.has(id)) throw new AppError(409, `Device ${id} is given more than once`);
      seen.add(id);
    }
    const devices: NewDevice[] = [];
    for (let start = 0; start < prepared.length; start += TOKEN_HASH_CHUNK) {
      if (start > 0) await yieldToEventLoop();
      for (const { id, token, fields } of prepared.slice(start, start + TOKEN_HASH_CHUNK)) {
        devices.push({ ...fields, id, token_hash: hashDeviceToken(token) });
      }
    }
    const created = await this.store.createDevices(accountId, devices);
    this.emit(
      'devices-created',
      prepared.map(({ id, token }) => ({ id, token })),
    );
    return created.map((device, index) => ({ ...device, device_token: prepared[index]?.token ?? '' }));
  }

  async updateDevice(accountId: number, id: string, patch: DeviceInput): Promise<Device> {
    const device = await this.store.updateDevice(
      accountId,
      normalizeDeviceId(id),
      normalizeDeviceInput(patch, ''),
    );
    if (!device) throw deviceNotFound(id);
    return device;
  }

  async deleteDevice(accountId: number, id: string): Promise<void> {
    const deviceId = normalizeDeviceId(id);
    if (!(await this.store.deleteDevice(accountId, deviceId, this.now()))) throw deviceNotFound(id);
    this.emit('device-removed', deviceId);
  }

  async replaceDeviceToken(
    accountId: number,
    id: string,
    token?: string,
  ): Promise<{ id: string; device_token: string }> {
    const deviceId = normalizeDeviceId(id);
    const deviceToken = token === undefined ? randomSecret() : checkToken(token, '');
    if (!(await this.store.setDeviceToken(accountId, deviceId, hashDeviceToken(deviceToken)))) {
      throw deviceNotFound(id);
    }
    this.emit('device-token-changed', deviceId, deviceToken);
    return { id: deviceId, device_token: deviceToken };
  }

  // ---- jobs ----

  /**
   * Creates the job. `failOffline`: its targets whose devices are disconnected fail at once with
   * this message instead of waiting for them (SCI without allowOffline). `submitted`: the selector
   * to keep as submitted, when the request named more than `input.targets` (SCI's unknown devices).
   */
  async createJob(
    accountId: number,
    username: string,
    input: JobCreateInput,
    { failOffline, submitted }: { failOffline?: string; submitted?: TargetSelector } = {},
  ): Promise<JobDetail> {
    const now = this.now();
    const checked = checkJobInput(input, now);
    let job = await this.store.createJob({
      accountId,
      username,
      ...checked,
      targets: submitted ?? checked.targets,
      now,
    });
    if (failOffline !== undefined) {
      const failed = await this.store.failDisconnectedTargets(accountId, job.id, failOffline, this.now());
      if (failed.length > 0) job = (await this.store.getJob(accountId, job.id)) ?? job;
    }
    this.emit('job-created', job);
    return job;
  }

  /**
   * The dispatcher stored device reports on targets of these jobs: whoever watches one of them (a
   * synchronous SCI request) looks again.
   */
  targetsChanged(jobIds: Iterable<number>): void {
    for (const jobId of new Set(jobIds)) for (const watcher of this.#watchers.get(jobId) ?? []) watcher();
  }

  /** Calls `onChange` when targets of the job may have changed on this node; the answer stops it. */
  watchJob(jobId: number, onChange: () => void): () => void {
    const watchers = this.#watchers.get(jobId) ?? new Set();
    watchers.add(onChange);
    this.#watchers.set(jobId, watchers);
    return () => {
      watchers.delete(onChange);
      if (watchers.size === 0 && this.#watchers.get(jobId) === watchers) this.#watchers.delete(jobId);
    };
  }

  /** The devices a job with this body would target, checked as a creation is; creates nothing. */
  previewJob(accountId: number, input: JobCreateInput): Promise<TargetPreview> {
    const now = this.now();
    const { selection } = checkJobInput(input, now);
    return this.store.previewTargets(accountId, selection, now, PREVIEW_LIST_SIZE);
  }

  async cancelJobs(accountId: number, ids: number[], force: boolean): Promise<ByIdResult<Job>[]> {
    const { results, notices } = await this.store.cancelJobs(accountId, ids, force, this.now());
    this.announceCancels(notices);
    return results;
  }

  async cancelJobsByQuery(accountId: number, query: Query, force: boolean): Promise<ByQueryResult> {
    const { count, skipped, notices } = await this.store.cancelJobsByQuery(
      accountId,
      query,
      force,
      this.now(),
    );
    this.announceCancels(notices);
    return { count, skipped };
  }

  deleteJobs(accountId: number, ids: number[]): Promise<ByIdResult<number>[]> {
    return this.store.deleteJobs(accountId, ids);
  }

  deleteJobsByQuery(accountId: number, query: Query): Promise<ByQueryResult> {
    return this.store.deleteJobsByQuery(accountId, query);
  }

  // ---- rollouts (CONTRACT §9) ----

  /** Stops new sends of a job (its in-progress targets run on); 409 on a finished job. */
  pauseJob(accountId: number, id: number): Promise<ByIdResult<Job>> {
    return this.store.pauseJob(accountId, id);
  }

  /** Lets a paused job send again; 409 on a finished job or one that is not paused. */
  async resumeJob(accountId: number, id: number): Promise<ByIdResult<Job>> {
    const result = await this.store.resumeJob(accountId, id);
    if (result.ok) this.emit('job-resumed', id);
    return result;
  }

  /** Puts the matching ended targets of a job back to queued as their next attempt, in place. */
  async retryTargets(accountId: number, jobId: number, query: Query | null): Promise<ByQueryResult> {
    const result = await this.store.retryTargets(accountId, jobId, query, this.now());
    if (result === undefined) throw notFound(`Job ${jobId} not found`);
    if (result.count > 0) this.emit('job-resumed', jobId);
    return result;
  }

  /** Cancels the matching pending targets of a job as a job cancel does. */
  async cancelTargets(
    accountId: number,
    jobId: number,
    query: Query | null,
    force: boolean,
  ): Promise<ByQueryResult> {
    const result = await this.store.cancelTargets(accountId, jobId, query, force, this.now());
    if (result === undefined) throw notFound(`Job ${jobId} not found`);
    this.announceCancels(result.notices);
    return { count: result.count, skipped: result.skipped };
  }

  private announceCancels(notices: CancelNotice[]): void {
    if (notices.length > 0) this.emit('jobs-canceled', notices);
  }
}

/** The meaning of a create body's values (its shape was checked by the API): the job to store. */
function checkJobInput(input: JobCreateInput, now: number): Omit<NewJob, 'accountId' | 'username' | 'now'> {
  if (!(JOB_TYPES as readonly string[]).includes(input.job_type)) {
    throw badRequest(`job_type must be one of ${JOB_TYPES.join(', ')}, not '${String(input.job_type)}'`);
  }
  const selection = checkSelector(input.targets);
  const payload = input.payload === undefined ? null : input.payload;
  if (nestingDepth(payload) > MAX_PAYLOAD_DEPTH) {
    throw badRequest(`payload is nested more than ${MAX_PAYLOAD_DEPTH} levels deep`);
  }
  const controls = checkControls(input, now);
  const payloadBytes = Buffer.byteLength(JSON.stringify(payload) ?? 'null');
  if (payloadBytes > MAX_PAYLOAD_BYTES) {
    throw badRequest(`payload is ${payloadBytes} bytes of JSON, more than the ${MAX_PAYLOAD_BYTES} allowed`);
  }
  return {
    job_type: input.job_type,
    description: input.description ?? null,
    targets: submittedSelector(input.targets),
    selection,
    payload,
    timeout: checkSeconds(input.timeout, DEFAULT_TIMEOUT_SECONDS, 'timeout'),
    offline_timeout: checkSeconds(input.offline_timeout, DEFAULT_OFFLINE_TIMEOUT_SECONDS, 'offline_timeout'),
    controls,
    rollout_state: rolloutStateAt('running', 'new', controls.schedule, now),
  };
}

/** How deeply arrays and objects nest in a parsed JSON value, counted without recursion. */
function nestingDepth(value: unknown): number {
  let deepest = 0;
  const pending: [unknown, number][] = [[value, 0]];
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const [current, depth] = item;
    if (current === null || typeof current !== 'object') continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_PAYLOAD_DEPTH) return deepest;
    for (const child of Object.values(current)) pending.push([child, depth + 1]);
  }
  return deepest;
}

const deviceNotFound = (id: string) => notFound(`Device ${id} not found`);

function checkDeviceId(id: string, where: string): string {
  if (!DEVICE_ID_PATTERN.test(id)) {
    throw badRequest(
      `Invalid device id '${id}'${where}: expected four groups of 8 hex digits, e.g. 00000000-00000000-0004F3FF-FF0123AB`,
    );
  }
  return normalizeDeviceId(id);
}

const PRINTABLE_ASCII = /^[\x20-\x7e]{16,128}$/;

function checkToken(token: string, where: string): string {
  if (!PRINTABLE_ASCII.test(token)) {
    throw badRequest(`device_token${where} must be 16 to 128 printable ASCII characters`);
  }
  return token;
}

/** Semantic checks and normal forms of the fields a client writes (shapes are the API's job). */
function normalizeDeviceInput(input: DeviceInput, where: string): DeviceInput {
  const output: DeviceInput = { ...input };
  if (input.group !== undefined) output.group = normalizeGroup(input.group);
  if (input.tags !== undefined) {
    if (input.tags.some((tag) => tag === '')) throw badRequest(`tags${where} must not contain an empty tag`);
    output.tags = [...new Set(input.tags)];
  }
  if (input.vendor_id !== undefined && input.vendor_id !== null && !Number.isSafeInteger(input.vendor_id)) {
    throw badRequest(`vendor_id${where} must be an integer`);
  }
  for (const field of ['signal_percent', 'signal_percent2'] as const) {
    const value = input[field];
    if (value !== undefined && value !== null && !(value >= 0 && value <= 100)) {
      throw badRequest(`${field}${where} must be between 0 and 100, not ${value}`);
    }
  }
  if (input.health_status !== undefined && !HEALTH_STATUSES.includes(input.health_status)) {
    throw badRequest(`health_status${where} must be one of ${HEALTH_STATUSES.join(', ')}`);
  }
  if (input.restricted_status !== undefined && !RESTRICTED_STATUSES.includes(input.restricted_status)) {
    throw badRequest(`restricted_status${where} must be one of ${RESTRICTED_STATUSES.join(', ')}`);
  }
  return output;
}

function checkSeconds(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0 || value > MAX_TIMEOUT_SECONDS) {
    throw badRequest(`${name} must be a positive whole number of seconds, not ${value}`);
  }
  return value;
}

function checkStrings(value: unknown, name: string): string[] {
  if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) {
    throw badRequest(`targets.${name} must be an array of strings`);
  }
  return value as string[];
}

/** Validates `targets` and puts it in the form the store resolves: ids upper-case, groups as paths. */
function checkSelector(selector: TargetSelector): DeviceSelection {
  if (typeof selector !== 'object' || selector === null || Array.isArray(selector)) {
    throw badRequest('targets must be an object');
  }
  if (!SELECTOR_KEYS.some((key) => selector[key] !== undefined)) {
    throw badRequest(`targets must name at least one of ${SELECTOR_KEYS.join(', ')}`);
  }
  const devices = selector.devices === undefined ? [] : checkStrings(selector.devices, 'devices');
  const groups = selector.groups === undefined ? [] : checkStrings(selector.groups, 'groups');
  const tags = selector.tags === undefined ? [] : checkStrings(selector.tags, 'tags');
  if (selector.all !== undefined && typeof selector.all !== 'boolean')
    throw badRequest('targets.all must be true or false');
  let query: Query | null = null;
  if (selector.query !== undefined) {
    if (typeof selector.query !== 'string') throw badRequest('targets.query must be a string');
    if (selector.query.trim() === '')
      throw badRequest('targets.query is empty (to target every device, say "all": true)');
    query = parseQuery(selector.query, 'devices');
  }
  const unknownId = devices.find((id) => !DEVICE_ID_PATTERN.test(id));
  if (unknownId !== undefined) throw badRequest(`Unknown device id '${unknownId}' in targets.devices`);
  const groupPaths = groups.map((group) => {
    const path = normalizeGroup(group);
    if (path === '') throw badRequest(`targets.groups: '${group}' is not a group`);
    return path;
  });
  if (tags.includes('')) throw badRequest('targets.tags must not contain an empty tag');
  return {
    devices: [...new Set(devices.map(normalizeDeviceId))],
    groups: [...new Set(groupPaths)],
    tags: [...new Set(tags)],
    query,
    all: selector.all === true,
  };
}

/** The selector as submitted (only its known keys), kept with the job and shown by GET. */
function submittedSelector(selector: TargetSelector): TargetSelector {
  const submitted: TargetSelector = {};
  for (const key of SELECTOR_KEYS) {
    if (selector[key] !== undefined) Object.assign(submitted, { [key]: selector[key] });
  }
  return submitted;
}
