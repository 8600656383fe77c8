import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt, { type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { type Dispatch, type Logger, startDispatch } from '../../src/dispatch/index.js';
import type { JobCreateInput } from '../../src/jobs/service.js';
import { JobService } from '../../src/jobs/service.js';
import type { JobDetail, JobStatus, JobTarget, TargetStatus } from '../../src/model/job.js';
import { Metrics } from '../../src/observability/metrics.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';

export const silentLogger = pino({ level: 'silent' });

let deviceCounter = 0;
/** A fresh device id, unique within the test run. */
export const newDeviceId = (): string =>
  `00000000-00000000-${process.pid.toString(16).padStart(8, '0').toUpperCase()}-${(++deviceCounter).toString(16).padStart(8, '0').toUpperCase()}`;

export const tempDir = (): string => mkdtempSync(join(tmpdir(), 'fleetjobs-dispatch-'));

/** Polls `check` until it returns a value other than undefined/false (a generous limit, not a speed goal). */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface Service {
  store: Store;
  jobs: JobService;
  accountId: number;
  mqttUrl: string;
  dbPath: string;
  dispatch: Dispatch;
  metrics: Metrics;
  /** Creates devices, returning their ids and tokens. */
  addDevices(count: number): Promise<{ id: string; token: string }[]>;
  createJob(input: Partial<JobCreateInput> & { targets: JobCreateInput['targets'] }): Promise<number>;
  stop(): Promise<void>;
}

/** Store + job service + dispatch in this process, on a fresh database (or `dbPath`). */
export async function startService(
  options: { dbPath?: string; mqttUrl?: string; now?: () => number; logger?: Logger } = {},
): Promise<Service> {
  const dir = options.dbPath ? null : tempDir();
  const dbPath = options.dbPath ?? join(dir as string, 'fleetjobs.db');
  const store = await openSqliteStore(dbPath);
  const jobs = new JobService(store);
  const account = await store.ensureAccount('acme', Date.now());
  const metrics = new Metrics(() => store.totals());
  const dispatch = await startDispatch({
    metrics,
    store,
    jobs,
    mqttHost: '127.0.0.1',
    mqttPort: 0,
    mqttUrl: options.mqttUrl,
    logger: options.logger ?? silentLogger,
    ...(options.now ? { now: options.now } : {}),
  });
  return {
    store,
    jobs,
    accountId: account.id,
    mqttUrl: options.mqttUrl ?? `mqtt://127.0.0.1:${dispatch.port}`,
    dbPath,
    dispatch,
    metrics,
    async addDevices(count) {
      const inputs = Array.from({ length: count }, () => ({ id: newDeviceId() }));
      const created = await jobs.createDevices(account.id, inputs);
      return created.map((device) => ({ id: device.id, token: device.device_token }));
    },
    async createJob(input) {
      const job = await jobs.createJob(account.id, 'alice', { job_type: 'reboot', ...input });
      return job.id;
    },
    async stop() {
      await dispatch.close();
      metrics.close();
      await store.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Received {
  kind: 'request' | 'cancel';
  jobId: number;
  body: Record<string, unknown>;
}

/** A device speaking CONTRACT §7 with the `mqtt` package. */
export class TestDevice extends EventEmitter {
  readonly received: Received[] = [];

  private constructor(
    readonly id: string,
    readonly client: MqttClient,
  ) {
    super();
    client.on('message', (topic, payload) => {
      const [, , , jobId, kind] = topic.split('/');
      if (kind !== 'request' && kind !== 'cancel') return;
      this.received.push({ kind, jobId: Number(jobId), body: JSON.parse(payload.toString()) });
      this.emit('received');
    });
  }

  /** Connects with a Will, subscribes, announces `online` (unless `announce` is false). */
  static async connect(
    url: string,
    id: string,
    token: string,
    options: { announce?: boolean; clientId?: string; clean?: boolean; keepalive?: number } = {},
  ): Promise<TestDevice> {
    const client = await mqtt.connectAsync(url, {
      clientId: options.clientId ?? id,
      username: id,
      password: token,
      protocolVersion: 4,
      clean: options.clean ?? true,
      reconnectPeriod: 0,
      keepalive: options.keepalive ?? 60,
      will: { topic: `fleetjobs/${id}/presence`, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    const device = new TestDevice(id, client);
    await client.subscribeAsync(`fleetjobs/${id}/jobs/+/+`, { qos: 1 });
    if (options.announce !== false) await device.announce('online');
    return device;
  }

  async announce(presence: 'online' | 'offline'): Promise<void> {
    await this.client.publishAsync(`fleetjobs/${this.id}/presence`, presence, { qos: 1, retain: true });
  }

  async status(jobId: number, body: unknown): Promise<void> {
    const payload = typeof body === 'string' ? body : JSON.stringify(body);
    await this.client.publishAsync(`fleetjobs/${this.id}/jobs/${jobId}/status`, payload, { qos: 1 });
  }

  async state(body: unknown): Promise<void> {
    await this.client.publishAsync(`fleetjobs/${this.id}/state`, JSON.stringify(body), { qos: 1 });
  }

  /** Waits for the `count`-th message of this kind for the job. */
  async next(kind: Received['kind'], jobId: number, count = 1): Promise<Received> {
    return eventually(
      () => this.received.filter((m) => m.kind === kind && m.jobId === jobId)[count - 1],
      `${kind} of job ${jobId}`,
    );
  }

  /** Resolves when the connection closes. */
  closed(): Promise<void> {
    return new Promise((resolve) => this.client.once('close', () => resolve()));
  }

  /** A clean goodbye: `offline`, then DISCONNECT. */
  async leave(): Promise<void> {
    await this.announce('offline');
    await this.client.endAsync();
  }

  /** The connection dies without a goodbye (the broker publishes the Will). */
  drop(): void {
    this.client.stream.destroy();
    this.client.end(true);
  }
}

/** Whether a connection attempt is refused. */
export async function connectRefused(url: string, options: mqtt.IClientOptions): Promise<boolean> {
  try {
    const client = await mqtt.connectAsync(url, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      connectTimeout: 5_000,
      ...options,
    });
    await client.endAsync(true);
    return false;
  } catch {
    return true;
  }
}

/** The job's targets by device id. */
export async function targetsOf(service: Service, jobId: number): Promise<Map<string, JobTarget>> {
  const targets = await service.store.listTargets(jobId, {
    accountId: service.accountId,
    query: null,
    order: { field: 'device_id', direction: 'asc' },
    after: null,
    limit: 1000,
  });
  return new Map((targets ?? []).map((target) => [target.device_id, target]));
}

export async function jobOf(service: Service, jobId: number): Promise<JobDetail> {
  const job = await service.store.getJob(service.accountId, jobId);
  if (!job) throw new Error(`job ${jobId} not found`);
  return job;
}

/** Waits until the target has the status. */
export const targetBecomes = (service: Service, jobId: number, deviceId: string, status: TargetStatus) =>
  eventually(async () => {
    const target = (await targetsOf(service, jobId)).get(deviceId);
    return target?.status === status ? target : undefined;
  }, `target ${deviceId} of job ${jobId} ${status}`);

export const jobBecomes = (service: Service, jobId: number, status: JobStatus) =>
  eventually(async () => {
    const job = await jobOf(service, jobId);
    return job.job_status === status ? job : undefined;
  }, `job ${jobId} ${status}`);
