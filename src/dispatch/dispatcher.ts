import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { BaseLogger } from 'pino';
import type { JobService } from '../jobs/service.js';
import type { Metrics } from '../observability/metrics.js';
import type { CancelNotice, DispatchStore, OutgoingRequest, StatusUpdate } from '../store/store.js';
import {
  cancelPayload,
  parseDeviceState,
  parsePresence,
  parseStatusReport,
  requestPayload,
} from './messages.js';
import { cancelTopic, type DeviceTopic, requestTopic } from './topics.js';

export type Logger = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;

/** The series dispatch counts. */
export type DispatchMetrics = Pick<Metrics, 'dispatchPublishes' | 'statusReports'>;

/** How the dispatcher reaches devices: the embedded broker or a client of an external one. */
export interface Transport {
  /** Publishes at QoS 1; resolves once the broker took the message. */
  publish(topic: string, payload: string): Promise<void>;
  /** Closes the device's connection, if this broker can. */
  kick(deviceId: string): void;
  close(): Promise<void>;
}

/** Requests published per store round trip; the event loop gets a turn between batches. */
const BATCH = 250;
/** Status messages written per transaction. */
const STATUS_BATCH = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

interface QueuedStatus {
  update: StatusUpdate;
  settle: (error?: unknown) => void;
}

/**
 * The device side of jobs (CONTRACT §7): presence, delivering requests and cancels, applying
 * status reports, timeouts. Everything it decides lives in the store, so a restart resumes.
 */
export class Dispatcher {
  readonly #store: DispatchStore;
  readonly #jobs: JobService;
  readonly #logger: Logger;
  readonly #metrics: DispatchMetrics | undefined;
  #transport: Transport | null = null;
  #attach: () => void = () => undefined;
  readonly #attached = new Promise<void>((resolve) => {
    this.#attach = resolve;
  });
  #closed = false;
  #stop: () => void = () => undefined;
  /** Resolves at close(): publishes still waiting for the broker stop waiting then. */
  readonly #stopped = new Promise<void>((resolve) => {
    this.#stop = resolve;
  });
  /** Per device, the tail of its presence writes, so online/offline apply in arrival order. */
  readonly #deviceChains = new Map<string, Promise<void>>();
  /**
   * Per device, the tail of its sending after `online`: separate from the presence writes, which
   * must never wait for publishes (an external broker's client takes no acknowledgement while a
   * message it delivered is being stored).
   */
  readonly #sendChains = new Map<string, Promise<void>>();
  /** How each device writes its id in topics (as it connected). */
  readonly #topicIds = new Map<string, string>();
  readonly #statusQueue: QueuedStatus[] = [];
  #statusFlush: Promise<void> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #timerArming = false;
  #expiring: Promise<void> | null = null;
  /** Work in flight that close() waits for. */
  readonly #tasks = new Set<Promise<unknown>>();

  readonly #onJobCreated = () => this.#track(this.#startJobs());
  readonly #onJobsCanceled = (notices: CancelNotice[]) => this.#track(this.#sendCancels(notices));
  readonly #onDeviceGone = (deviceId: string) => this.#kick(deviceId);

  constructor(options: {
    store: DispatchStore;
    jobs: JobService;
    logger: Logger;
    metrics?: DispatchMetrics;
  }) {
    this.#store = options.store;
    this.#jobs = options.jobs;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
  }

  #listen(on: boolean): void {
    const method = on ? 'on' : 'off';
    this.#jobs[method]('job-created', this.#onJobCreated);
    this.#jobs[method]('jobs-canceled', this.#onJobsCanceled);
    this.#jobs[method]('device-removed', this.#onDeviceGone);
    this.#jobs[method]('device-token-changed', this.#onDeviceGone);
  }

  /**
   * Starts dispatching over `transport`: listens to the job service, takes up `new` jobs and
   * schedules timeouts. Devices may already talk to `receive` before; what it sends waits for this.
   */
  async start(transport: Transport): Promise<void> {
    this.#transport = transport;
    this.#attach();
    this.#listen(true);
    await this.#startJobs();
    this.#armTimer();
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stop();
    this.#listen(false);
    if (this.#timer) clearTimeout(this.#timer);
    while (this.#tasks.size > 0 || this.#statusFlush) {
      await Promise.allSettled([...this.#tasks, this.#statusFlush]);
    }
  }

  // ---- messages from devices ----

  /**
   * A message a device published on one of its topics. Resolves once what it says is stored (the
   * embedded broker acknowledges the message only then); bad input is logged and ignored.
   */
  async receive(topic: DeviceTopic, payload: Buffer): Promise<void> {
    if (this.#closed) throw new Error('dispatcher closed');
    switch (topic.kind) {
      case 'presence': {
        const online = parsePresence(payload);
        if (!online.ok) return this.#ignore(topic, online.reason);
        return this.presence(topic.deviceId, online.value, topic.topicId);
      }
      case 'state': {
        const state = parseDeviceState(payload);
        if (!state.ok) return this.#ignore(topic, state.reason);
        if (state.value.ignored.length > 0) {
          this.#logger.info(
            { device: topic.deviceId, ignored: state.value.ignored },
            'device state: fields ignored',
          );
        }
        const known = await this.#store.updateDeviceState(topic.deviceId, state.value.state, Date.now());
        if (!known) this.#ignore(topic, 'unknown device');
        return;
      }
      case 'status': {
        this.#metrics?.statusReports.inc();
        const report = parseStatusReport(payload);
        if (!report.ok) return this.#ignore(topic, report.reason);
        const update = { device_id: topic.deviceId, job_id: topic.jobId, report: report.value };
        return this.#queueStatus(update);
      }
    }
  }

  /** A device announced itself online or offline (or its Will said offline). */
  presence(deviceId: string, online: boolean, topicId = deviceId): Promise<void> {
    // Connections closing because the service stops say nothing: the next start resets presence.
    if (this.#closed) return Promise.resolve();
    const stored = this.#serial(deviceId, async () => {
      const known = await this.#store.setConnection(
        deviceId,
        online ? 'connected' : 'disconnected',
        Date.now(),
      );
      if (online && !known) this.#logger.warn({ device: deviceId }, 'presence of an unknown device ignored');
      if (known) this.#logger.info({ device: deviceId }, online ? 'device connected' : 'device disconnected');
      if (online && known) this.#topicIds.set(deviceId, topicId);
      return known;
    });
    if (online) {
      this.#track(
        this.#serial(
          deviceId,
          async () => {
            if (await stored) await this.#sendPending(deviceId);
          },
          this.#sendChains,
        ),
      );
    }
    return stored.then(() => undefined);
  }

  /**
   * The broker lost every connection and session (an external broker restarted): nobody is online
   * until they say so again (or its retained presence does). Runs after the earlier presence writes.
   */
  async forgetPresence(): Promise<void> {
    if (this.#closed) return;
    await Promise.allSettled([...this.#deviceChains.values()]);
    await this.#store.disconnectAll(Date.now());
  }

  #ignore(topic: DeviceTopic, reason: string): void {
    this.#logger.warn({ device: topic.deviceId, topic: topic.kind }, `device message ignored: ${reason}`);
  }

  #kick(deviceId: string): void {
    this.#topicIds.delete(deviceId);
    this.#transport?.kick(deviceId);
  }

  /** Runs `work` after the device's earlier work of `chains`; failures are logged, never thrown on. */
  #serial<T>(deviceId: string, work: () => Promise<T>, chains = this.#deviceChains): Promise<T> {
    const previous = chains.get(deviceId) ?? Promise.resolve();
    const result = previous.then(work);
    const tail = result.then(
      () => undefined,
      (error: unknown) => this.#logger.error({ err: error, device: deviceId }, 'device presence work failed'),
    );
    chains.set(deviceId, tail);
    void tail.then(() => {
      if (chains.get(deviceId) === tail) chains.delete(deviceId);
    });
    return result;
  }

  #queueStatus(update: StatusUpdate): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#statusQueue.push({ update, settle: (error) => (error ? reject(error) : resolve()) });
      this.#statusFlush ??= this.#flushStatuses();
    });
  }

  /** Writes queued status reports, many per transaction, in arrival order. */
  async #flushStatuses(): Promise<void> {
    await yieldToEventLoop();
    while (this.#statusQueue.length > 0) {
      const batch = this.#statusQueue.splice(0, STATUS_BATCH);
      try {
        const applied = await this.#store.applyStatuses(
          batch.map((queued) => queued.update),
          Date.now(),
        );
        batch.forEach(({ update, settle }, index) => {
          if (!applied[index]) {
            this.#logger.info(
              { device: update.device_id, job: update.job_id, status: update.report.status },
              'device status ignored: a repeat, a finished target, or no target of this device',
            );
          }
          settle();
        });
      } catch (error) {
        this.#logger.error({ err: error }, 'storing device status failed');
        for (const { settle } of batch) settle(error);
      }
    }
    this.#statusFlush = null;
    this.#armTimer();
  }

  // ---- messages to devices ----

  #track<T>(task: Promise<T>): void {
    const tracked = task.catch((error: unknown) => this.#logger.error({ err: error }, 'dispatch failed'));
    this.#tasks.add(tracked);
    void tracked.finally(() => this.#tasks.delete(tracked));
  }

  /**
   * Publishes once started. At close it stops waiting (a broker that is down would hold close()
   * forever): what was decided is stored, and an unanswered request is sent again on `online`.
   */
  async #publish(topic: string, payload: string): Promise<void> {
    const published = this.#attached
      .then(() => this.#transport?.publish(topic, payload))
      .then(() => this.#metrics?.dispatchPublishes.inc());
    await Promise.race([published, this.#stopped]);
  }

  #topicId(deviceId: string): string {
    return this.#topicIds.get(deviceId) ?? deviceId;
  }

  async #publishRequests(requests: OutgoingRequest[]): Promise<void> {
    await Promise.all(
      requests.map((request) =>
        this.#publish(
          requestTopic(this.#topicId(request.device_id), request.job_id),
          requestPayload(request),
        ),
      ),
    );
  }

  async #sendCancels(notices: CancelNotice[]): Promise<void> {
    for (let start = 0; start < notices.length; start += BATCH) {
      await Promise.all(
        notices
          .slice(start, start + BATCH)
          .map((notice) =>
            this.#publish(cancelTopic(this.#topicId(notice.device_id), notice.job_id), cancelPayload(notice)),
          ),
      );
      await yieldToEventLoop();
    }
  }

  /** After a device announced itself: its pending cancels, then its queued and in-progress requests. */
  async #sendPending(deviceId: string): Promise<void> {
    await this.#sendCancels(await this.#store.pendingCancels(deviceId));
    let afterJobId = 0;
    for (;;) {
      const requests = await this.#store.takeRequests(deviceId, Date.now(), BATCH, afterJobId);
      await this.#publishRequests(requests);
      const last = requests.at(-1);
      if (!last || requests.length < BATCH || this.#closed) break;
      afterJobId = last.job_id;
    }
    this.#armTimer();
  }

  /** Takes up every `new` job: it becomes in progress and its connected targets are sent. */
  async #startJobs(): Promise<void> {
    const jobIds = await this.#store.startNewJobs();
    await Promise.all(jobIds.map((jobId) => this.#dispatchJob(jobId)));
    this.#armTimer();
  }

  async #dispatchJob(jobId: number): Promise<void> {
    let afterDeviceId = '';
    for (;;) {
      const requests = await this.#store.takeJobRequests(jobId, Date.now(), BATCH, afterDeviceId);
      await this.#publishRequests(requests);
      const last = requests.at(-1);
      if (!last || requests.length < BATCH || this.#closed) break;
      afterDeviceId = last.device_id;
      await yieldToEventLoop();
    }
  }

  // ---- timeouts ----

  /** Schedules the next expiry at the earliest pending deadline (coalesced: one query per turn). */
  #armTimer(): void {
    if (this.#timerArming || this.#closed) return;
    this.#timerArming = true;
    this.#track(
      (async () => {
        await yieldToEventLoop();
        this.#timerArming = false;
        const deadline = await this.#store.nextDeadline();
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = null;
        if (deadline === null || this.#closed) return;
        const delay = Math.min(Math.max(deadline - Date.now(), 0), MAX_TIMER_MS);
        this.#timer = setTimeout(() => {
          this.#timer = null;
          if (this.#expiring) return;
          this.#expiring = this.#expire();
          this.#track(this.#expiring);
        }, delay);
      })(),
    );
  }

  async #expire(): Promise<void> {
    try {
      while ((await this.#store.expireTargets(Date.now(), BATCH)) === BATCH && !this.#closed) {
        await yieldToEventLoop();
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'expiring targets failed');
    } finally {
      this.#expiring = null;
      this.#armTimer();
    }
  }
}
