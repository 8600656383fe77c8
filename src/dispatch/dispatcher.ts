import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import type { BaseLogger } from 'pino';
import { SETTLE_RULES } from '../jobs/rollout/settle.js';
import type { DeviceLogin, JobService } from '../jobs/service.js';
import type { Job, Millis } from '../model/job.js';
import type { Metrics } from '../observability/metrics.js';
import type {
  CancelNotice,
  DeviceStateUpdate,
  DispatchStore,
  JobClaim,
  OutgoingRequest,
  PresenceUpdate,
  ServiceNode,
  Settled,
  StatusUpdate,
  WakeUp,
} from '../store/store.js';
import { Batches } from './batches.js';
import {
  cancelPayload,
  parseDeviceState,
  parsePresence,
  parseStatusReport,
  requestPayload,
} from './messages.js';
import { RolloutTicker } from './rollouts.js';
import { cancelTopic, type DeviceTopic, requestTopic } from './topics.js';

export type Logger = Pick<BaseLogger, 'debug' | 'info' | 'warn' | 'error'>;

/** The series dispatch counts. */
export type DispatchMetrics = Pick<Metrics, 'dispatchPublishes' | 'statusReports'>;

/** How the dispatcher reaches devices: the embedded broker or a client of an external one. */
export interface Transport {
  /**
   * Publishes at QoS 1 to the device; resolves once the broker took the message (the embedded one:
   * wrote it to the device's connection), with `acknowledged`, which resolves once it is no longer
   * awaited: acknowledged by the device (the embedded broker) or the broker, or never to be.
   */
  publish(topic: string, payload: string): Promise<{ acknowledged: Promise<void> }>;
  /**
   * Devices' logins changed: `token` is a device's new one (a new device, or a replaced token),
   * null when it was deleted. A session opened with an old token is closed.
   */
  changeLogins(changes: LoginChange[]): void;
  /**
   * Presence is read again from the broker (its retained presence, replayed): what a dead node
   * had taken and not stored is not lost.
   */
  replayPresence(): void;
  /** Why devices cannot be reached through this broker now, or null when they can. */
  unreachable(): string | null;
  /**
   * The node stops: device messages go to the other nodes from now on. Resolves once those already
   * on their way to this node were received.
   */
  stopReceiving(): Promise<void>;
  close(): Promise<void>;
}

/** A device's new token (null: the device was deleted). */
export interface LoginChange {
  id: string;
  token: string | null;
}

/** Cancels published per batch; the event loop gets a turn between. */
const BATCH = 250;
/**
 * Targets timed out per transaction. Each may end a job of its own: its counters, its settling and
 * its events touch every index of jobs, ~0.4 ms of CPU a target on the full data set. On SQLite a
 * transaction holds the event loop from BEGIN to COMMIT: 250 took ~90 ms of CPU, and requests
 * waited behind each (bench/deadline-backlog.ts); 50 take ~20 ms.
 */
const EXPIRE_BATCH = 50;
/** Requests a device may have awaiting its acknowledgement (CONTRACT §13). */
export const DEVICE_WINDOW = 10;
/** Requests this node may have handed to the broker that it has not yet taken. */
export const NODE_WINDOW = 64;
/** Status messages written per transaction (a few ms); the event loop gets a turn between. */
const STATUS_BATCH = 100;
/** Presence messages written per statement; the event loop gets a turn between. */
const PRESENCE_BATCH = 250;
/** Device states written per transaction (one statement each, as their fields differ). */
const STATE_BATCH = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * How long a node's claim on a job lasts unless its heartbeat renews it, and how often the sweep
 * runs (heartbeat, take over expired claims, bury dead nodes, claim new jobs, re-read the next
 * deadline). A node is dead CLAIM_TTL_MS after its last heartbeat, and a sweep runs then
 * (`#sweepAtNextDeath`): its jobs pass to another within CLAIM_TTL_MS of its death plus a sweep's
 * own time (CONTRACT §8: 10 s).
 */
export const CLAIM_TTL_MS = 5_000;
export const SWEEP_MS = 2_000;
/** Jobs taken over from dead nodes per sweep. */
const TAKE_OVER_BATCH = 100;

/** A job this node fans out, with the device after which its targets are still to send. */
interface StartedJob {
  id: number;
  after: string;
  /** Taken over from a dead node: its in-progress targets may never have been published. */
  resend: boolean;
  /** Its requests handed to the broker so far: the claim is released once they all were. */
  sending: Promise<unknown>[];
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
  readonly #now: () => Millis;
  readonly #node: ServiceNode;
  #transport: Transport | null = null;
  #attach: () => void = () => undefined;
  readonly #attached = new Promise<void>((resolve) => {
    this.#attach = resolve;
  });
  #closed = false;
  /**
   * Publishes still waiting for the broker, each ended by close(). A set, not a promise each one
   * waits on: a reaction to a promise that resolves only at close lived as long as the service,
   * with the result it raced (~1 KB a request: the old generation grew by ~150 MB in a backlog of
   * 180,000 requests and its major GCs paused the event loop 85–107 ms).
   */
  readonly #waitingPublishes = new Set<() => void>();
  /** Presence messages in arrival order, stored a batch at a time (one statement each). */
  readonly #presence: Batches<PresenceUpdate>;
  /** Device states in arrival order, a transaction per batch. */
  readonly #states: Batches<DeviceStateUpdate>;
  /**
   * The tail of what is sent to devices that came online, batch after batch: apart from the
   * presence writes, which never wait for publishes (an external broker's client takes no
   * acknowledgement while a message it delivered is being stored).
   */
  #onlineSends: Promise<void> = Promise.resolve();
  /** Status reports in arrival order, a transaction per batch. */
  readonly #statuses: Batches<StatusUpdate>;
  #timer: NodeJS.Timeout | null = null;
  #timerArming = false;
  #expiring: Promise<void> | null = null;
  #sweeper: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;
  #deathSweep: NodeJS.Timeout | null = null;
  #claiming: Promise<void> | null = null;
  #claimAgain = false;
  #unlisten: () => Promise<void> = async () => undefined;
  /** Work in flight that close() waits for. */
  readonly #tasks = new Set<Promise<unknown>>();

  // Flow control (CONTRACT §13): requests are taken from the store only as there is room for them,
  // so none waits behind others once its target is in progress and its timeout runs.
  /** Per device, its requests awaiting its acknowledgement. */
  readonly #inFlight = new Map<string, number>();
  /** Requests handed to the broker that it has not taken yet. */
  #handedOver = 0;
  /** Devices announced online on this node. */
  readonly #online = new Set<string>();
  /** Devices that announced themselves, with the job after which their requests are still to send. */
  readonly #resend = new Map<string, number>();
  /** Devices a job passed over while they were full, with the job after which to look for queued targets. */
  readonly #owed = new Map<string, number>();
  /** Jobs this node claimed and fans out, in order. */
  readonly #startedJobs: StartedJob[] = [];
  #pumping: Promise<void> | null = null;
  #wake: () => void = () => undefined;

  /** Sends the queued targets of jobs with rollout controls, as their rules allow. */
  readonly #rollouts: RolloutTicker;

  // Every node hears of a new job (this one too): whichever claims it first sends it; a job with
  // rollout controls is sent by the rollout tick of every node, slot by slot.
  readonly #onJobCreated = () => this.#track(this.#store.notify('jobs'));
  readonly #onWakeUp = (wakeUp: WakeUp) => {
    if (wakeUp !== 'jobs') return;
    this.#claimJobs();
    this.#rollouts.poke();
  };
  readonly #onJobResumed = () => this.#rollouts.poke();
  readonly #onJobsCanceled = (notices: CancelNotice[]) => this.#track(this.#sendCancels(notices));
  readonly #onDevicesCreated = (logins: DeviceLogin[]) => this.#transport?.changeLogins(logins);
  readonly #onTokenChanged = (deviceId: string, token: string) => this.#changeLogin(deviceId, token);
  readonly #onDeviceRemoved = (deviceId: string) => this.#changeLogin(deviceId, null);

  constructor(options: {
    store: DispatchStore;
    jobs: JobService;
    logger: Logger;
    node: ServiceNode;
    metrics?: DispatchMetrics;
    now?: () => Millis;
  }) {
    this.#store = options.store;
    this.#node = options.node;
    this.#jobs = options.jobs;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    const logger = this.#logger;
    this.#presence = new Batches({
      size: PRESENCE_BATCH,
      write: this.#writePresence,
      what: 'device presence',
      logger,
    });
    this.#states = new Batches({ size: STATE_BATCH, write: this.#writeStates, what: 'device state', logger });
    this.#statuses = new Batches({
      size: STATUS_BATCH,
      write: this.#writeStatuses,
      // the targets the statuses ended may have held the earliest deadline
      emptied: () => this.#armTimer(),
      what: 'device status',
      logger,
    });
    this.#rollouts = new RolloutTicker({
      store: this.#store,
      logger: this.#logger,
      now: this.#now,
      outlet: {
        room: () => NODE_WINDOW - this.#handedOver,
        fullDevices: () => this.#fullDevices(),
        send: (requests) => this.#send(requests),
        sendCancels: (notices) => this.#sendCancels(notices),
      },
    });
  }

  #listen(on: boolean): void {
    const method = on ? 'on' : 'off';
    this.#jobs[method]('job-created', this.#onJobCreated);
    this.#jobs[method]('job-resumed', this.#onJobResumed);
    this.#jobs[method]('jobs-canceled', this.#onJobsCanceled);
    this.#jobs[method]('devices-created', this.#onDevicesCreated);
    this.#jobs[method]('device-removed', this.#onDeviceRemoved);
    this.#jobs[method]('device-token-changed', this.#onTokenChanged);
  }

  /**
   * Starts dispatching over `transport`: listens to the job service and to wake-ups from every
   * node, claims `new` jobs and those of dead nodes, schedules timeouts, and sweeps periodically.
   * Devices may already talk to `receive` before; what it sends waits for this.
   */
  async start(transport: Transport): Promise<void> {
    this.#transport = transport;
    this.#attach();
    this.#listen(true);
    this.#unlisten = await this.#store.listen(this.#onWakeUp);
    await this.#sweep();
    this.#rollouts.poke();
    this.#sweeper = setInterval(() => this.#sweepSoon(), SWEEP_MS);
  }

  /**
   * Stops: waits for work in flight, then leaves the store's nodes, its unfinished claims expiring
   * at once so that the other nodes take them over.
   */
  async close(): Promise<void> {
    this.#closed = true;
    for (const stop of this.#waitingPublishes) stop();
    this.#waitingPublishes.clear();
    this.#wake();
    this.#listen(false);
    if (this.#timer) clearTimeout(this.#timer);
    await this.#rollouts.close();
    if (this.#sweeper) clearInterval(this.#sweeper);
    if (this.#deathSweep) clearTimeout(this.#deathSweep);
    await this.#unlisten();
    await Promise.all([this.#presence.drained(), this.#states.drained(), this.#statuses.drained()]);
    while (this.#tasks.size > 0 || this.#pumping || this.#sweeping || this.#claiming) {
      await Promise.allSettled([...this.#tasks, this.#pumping, this.#sweeping, this.#claiming]);
    }
    await this.#store.leave(this.#node.id);
  }

  /** The node's claims, taken or renewed now. */
  #claim(): JobClaim {
    const now = this.#now();
    return { node: this.#node.id, now, expires: now + CLAIM_TTL_MS };
  }

  /**
   * The periodic sweep: the heartbeat renews this node's claims; jobs whose node died (claim
   * expired) are taken over, and after a node died the in-progress requests of every job are sent
   * again (the device statuses it held are gone with it) and presence is read again from the
   * broker (so is the presence it held); `new` jobs whose wake-up was lost are claimed; the timer
   * re-reads the earliest deadline (targets another node started).
   */
  async #sweep(): Promise<void> {
    try {
      await this.#store.heartbeat(this.#node, this.#claim());
      if (this.#closed) return;
      const taken = await this.#store.takeOverJobs(this.#claim(), TAKE_OVER_BATCH);
      if (taken.length > 0) this.#logger.info({ jobs: taken }, 'jobs of a node that stopped taken over');
      const buried = await this.#store.buryDeadNodes(this.#now() - CLAIM_TTL_MS, this.#claim());
      const resent = buried.jobs;
      if (buried.nodes.length > 0) {
        this.#logger.warn(
          { nodes: buried.nodes, jobs: resent.length },
          'a node died: in-progress requests are sent again, presence is read again',
        );
        this.#transport?.replayPresence();
      }
      // first: their targets' timeouts run, and their devices may have answered already
      this.#startedJobs.unshift(
        ...[...taken, ...resent].map((id) => ({ id, after: '', resend: true, sending: [] })),
      );
      this.#signal();
      this.#sweepAtNextDeath(await this.#store.oldestHeartbeat(this.#node.id));
    } catch (error) {
      this.#logger.error({ err: error }, 'sweep failed');
    }
    this.#claimJobs();
    this.#armTimer();
  }

  /**
   * Sweeps again as soon as the node with the oldest heartbeat would be dead, when that is before
   * the next periodic sweep: a node killed just after its heartbeat is buried CLAIM_TTL_MS after
   * it, not up to SWEEP_MS later.
   */
  #sweepAtNextDeath(oldestHeartbeat: Millis | null): void {
    if (oldestHeartbeat === null || this.#closed) return;
    const delay = oldestHeartbeat + CLAIM_TTL_MS + 1 - this.#now();
    if (delay >= SWEEP_MS) return;
    if (this.#deathSweep) clearTimeout(this.#deathSweep);
    this.#deathSweep = setTimeout(
      () => {
        this.#deathSweep = null;
        this.#sweepSoon();
      },
      Math.max(delay, 0),
    );
  }

  /** Runs a sweep unless one runs. */
  #sweepSoon(): void {
    if (this.#closed) return;
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = null;
    });
  }

  // ---- messages from devices ----

  /**
   * A message a device published on one of its topics. Resolves once what it says is stored (the
   * embedded broker acknowledges the message only then); bad input is logged and ignored.
   */
  async receive(topic: DeviceTopic, payload: Buffer, how: { replay?: boolean } = {}): Promise<void> {
    if (this.#closed) throw new Error('dispatcher closed');
    switch (topic.kind) {
      case 'presence': {
        const online = parsePresence(payload);
        if (!online.ok) return this.#ignore(topic, online.reason);
        return this.presence(topic.deviceId, online.value, topic.topicId, how.replay);
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
        return this.#states.push({ device_id: topic.deviceId, state: state.value.state });
      }
      case 'status': {
        this.#metrics?.statusReports.inc();
        const report = parseStatusReport(payload);
        if (!report.ok) return this.#ignore(topic, report.reason);
        const update = { device_id: topic.deviceId, job_id: topic.jobId, report: report.value };
        return this.#statuses.push(update);
      }
    }
  }

  /**
   * A device announced itself online or offline (or its Will said offline); a `replay` is the
   * broker's retained presence, replayed at a subscription: it changes only what it contradicts.
   * Resolves once stored, with the other presence messages of its batch.
   */
  presence(deviceId: string, online: boolean, topicId = deviceId, replay = false): Promise<void> {
    // Connections closing because the service stops say nothing: the next start resets presence.
    if (this.#closed) return Promise.resolve();
    // The time it was received orders it against messages other nodes received (CONTRACT §8).
    const update: PresenceUpdate = {
      device_id: deviceId,
      status: online ? 'connected' : 'disconnected',
      at: this.#now(),
      topic_id: topicId,
      replay,
    };
    return this.#presence.push(update);
  }

  /** Device messages received and not yet taken into a batch. */
  backlog(): number {
    return this.#presence.waiting + this.#states.waiting + this.#statuses.waiting;
  }

  /**
   * Stores a batch of presence, one statement. The devices it found online are then sent what
   * waits for them.
   */
  readonly #writePresence = async (batch: PresenceUpdate[]): Promise<void> => {
    const applied = await this.#store.setConnections(batch);
    const online: string[] = [];
    batch.forEach((update, index) => {
      const deviceId = update.device_id;
      if (!applied[index]) {
        this.#logger.info(
          { device: deviceId, online: update.status === 'connected' },
          'presence ignored: unknown device, or a later one applied',
        );
      } else {
        this.#logger.info(
          { device: deviceId },
          update.status === 'connected' ? 'device connected' : 'device disconnected',
        );
      }
      if (update.status === 'disconnected') {
        this.#forget(deviceId);
      } else if (applied[index]) {
        this.#online.add(deviceId);
        online.push(deviceId);
      }
    });
    if (online.length > 0) this.#sendToOnline(online);
  };

  readonly #writeStates = async (batch: DeviceStateUpdate[]): Promise<void> => {
    const known = await this.#store.updateDeviceStates(batch, this.#now());
    batch.forEach(({ device_id }, index) => {
      if (!known[index]) this.#ignore({ deviceId: device_id, kind: 'state' }, 'unknown device');
    });
  };

  /**
   * The broker lost every connection and session (an external broker restarted): nobody is online
   * until they say so again (or its retained presence does). Runs after the earlier presence writes.
   */
  async forgetPresence(): Promise<void> {
    if (this.#closed) return;
    await this.#presence.drained();
    await this.#store.disconnectAll(this.#now());
  }

  #ignore(topic: Pick<DeviceTopic, 'deviceId' | 'kind'>, reason: string): void {
    this.#logger.warn({ device: topic.deviceId, topic: topic.kind }, `device message ignored: ${reason}`);
  }

  /** The device's session ends: nothing more is taken for it until it announces itself again. */
  #changeLogin(deviceId: string, token: string | null): void {
    this.#forget(deviceId);
    this.#transport?.changeLogins([{ id: deviceId, token }]);
  }

  /** The device is gone: nothing more is taken for it until it announces itself again. */
  #forget(deviceId: string): void {
    this.#online.delete(deviceId);
    this.#resend.delete(deviceId);
    this.#owed.delete(deviceId);
  }

  /** Stores a batch of status reports in one transaction, in arrival order. */
  readonly #writeStatuses = async (batch: StatusUpdate[]): Promise<void> => {
    const applied = await this.#store.applyStatuses(batch, this.#now(), SETTLE_RULES, this.#onSettled);
    this.#jobs.targetsChanged(batch.flatMap((update, index) => (applied[index] ? [update.job_id] : [])));
    batch.forEach((update, index) => {
      if (!applied[index]) {
        this.#logger.info(
          { device: update.device_id, job: update.job_id, status: update.report.status },
          'device status ignored: a repeat, a finished target, or no target of this device',
        );
      }
    });
  };

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
  async #publish(topic: string, payload: string): Promise<{ acknowledged: Promise<void> }> {
    const published = this.#attached.then(() => {
      if (!this.#transport) throw new Error('dispatcher not started');
      return this.#transport.publish(topic, payload);
    });
    void published.then(
      () => this.#metrics?.dispatchPublishes.inc(),
      () => undefined,
    );
    const stopped = { acknowledged: Promise.resolve() };
    if (this.#closed) return stopped;
    return new Promise((resolve, reject) => {
      const stop = () => resolve(stopped);
      this.#waitingPublishes.add(stop);
      void published.then(resolve, reject).finally(() => this.#waitingPublishes.delete(stop));
    });
  }

  /** Publishes the cancels (whichever node sent the requests: the broker reaches the device). */
  async #sendCancels(notices: CancelNotice[]): Promise<void> {
    for (let start = 0; start < notices.length; start += BATCH) {
      const batch = notices.slice(start, start + BATCH);
      const topicIds = await this.#store.deviceTopicIds(batch.map((notice) => notice.device_id));
      await Promise.all(
        batch.map((notice) =>
          this.#publish(
            cancelTopic(topicIds.get(notice.device_id) ?? notice.device_id, notice.job_id),
            cancelPayload(notice),
          ),
        ),
      );
      await yieldToEventLoop();
    }
  }

  /**
   * After devices announced themselves, batch after batch: one query finds those with something
   * pending; each of those gets its pending cancels, then its queued and in-progress requests.
   */
  #sendToOnline(deviceIds: string[]): void {
    const sent = this.#onlineSends.then(async () => {
      for (const deviceId of await this.#store.devicesWithRequests(deviceIds)) {
        if (!this.#online.has(deviceId)) continue;
        await this.#sendCancels(await this.#store.pendingCancels(deviceId));
        if (!this.#online.has(deviceId)) continue;
        this.#resend.delete(deviceId);
        this.#resend.set(deviceId, 0);
        this.#signal();
      }
      this.#rollouts.poke();
    });
    this.#onlineSends = sent.catch((error: unknown) =>
      this.#logger.error({ err: error }, 'sending to devices that came online failed'),
    );
    this.#track(this.#onlineSends);
  }

  /** Claims `new` jobs (again once the claim in progress ends, when woken meanwhile). */
  #claimJobs(): void {
    this.#claimAgain = true;
    if (this.#claiming || this.#closed) return;
    this.#claiming = (async () => {
      while (this.#claimAgain && !this.#closed) {
        this.#claimAgain = false;
        await this.#startJobs();
      }
    })().finally(() => {
      this.#claiming = null;
    });
    this.#track(this.#claiming);
  }

  /** Claims every `new` job for this node: it becomes in progress and its connected targets are sent. */
  async #startJobs(): Promise<void> {
    const jobIds = await this.#store.startNewJobs(this.#claim());
    for (const id of jobIds) this.#startedJobs.push({ id, after: '', resend: false, sending: [] });
    this.#signal();
    this.#armTimer();
  }

  /** The job is fanned out: once its requests are with the broker, no other node needs to take it over. */
  #finishJob(job: StartedJob): void {
    this.#track(
      Promise.allSettled(job.sending).then(() =>
        // once closed, the claim is left to expire: the requests may not have reached the broker
        this.#closed ? undefined : this.#store.releaseJob(job.id, this.#node.id),
      ),
    );
  }

  // ---- flow control ----

  #deviceRoom(deviceId: string): number {
    return DEVICE_WINDOW - (this.#inFlight.get(deviceId) ?? 0);
  }

  /** The device was passed over while full: its queued targets from `jobId` on are sent as it has room. */
  #owe(deviceId: string, jobId: number): void {
    if (!this.#online.has(deviceId)) return;
    const after = this.#owed.get(deviceId);
    if (after === undefined || jobId - 1 < after) this.#owed.set(deviceId, jobId - 1);
  }

  /** New work or room for it: the pump goes on, or starts. */
  #signal(): void {
    const wake = this.#wake;
    this.#wake = () => undefined;
    wake();
    if (this.#pumping || !this.#transport || this.#closed) return;
    this.#pumping = this.#pump().finally(() => {
      this.#pumping = null;
    });
  }

  /**
   * The one place requests are taken from the store (which starts their targets' timeouts): only
   * as many as the node and each device have room for, so they are handed over at once.
   */
  async #pump(): Promise<void> {
    while (!this.#closed) {
      await yieldToEventLoop();
      if (this.#closed) return;
      let took: boolean;
      try {
        took = await this.#step();
      } catch (error) {
        this.#logger.error({ err: error }, 'taking requests failed');
        took = false;
      }
      if (took) {
        this.#armTimer();
        continue;
      }
      if (this.#resend.size === 0 && this.#owed.size === 0 && this.#startedJobs.length === 0) return;
      // until a slot frees or work arrives
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /**
   * Takes one batch of requests and sends it: first for devices that announced themselves, then
   * for devices a job passed over, then the next started job's. false (without waiting for
   * anything) when nothing can be taken now.
   */
  async #step(): Promise<boolean> {
    const room = NODE_WINDOW - this.#handedOver;
    if (room <= 0) return false;
    for (const [pending, resend] of [
      [this.#resend, true],
      [this.#owed, false],
    ] as const) {
      for (const [deviceId, afterJobId] of pending) {
        const limit = Math.min(room, this.#deviceRoom(deviceId));
        if (limit <= 0) continue;
        // taken out and put back at the end, so that devices take turns
        pending.delete(deviceId);
        const requests = await this.#store.takeRequests(deviceId, this.#now(), limit, afterJobId, resend);
        const last = requests.at(-1);
        if (last && requests.length === limit && this.#online.has(deviceId) && !pending.has(deviceId)) {
          pending.set(deviceId, last.job_id);
        }
        void this.#send(requests);
        return true;
      }
    }
    const job = this.#startedJobs[0];
    if (!job) return false;
    const full = this.#fullDevices();
    const requests = await this.#store.takeJobRequests(
      job.id,
      this.#now(),
      room,
      job.after,
      full,
      job.resend,
    );
    for (const deviceId of full) this.#owe(deviceId, job.id);
    job.sending.push(...this.#send(requests));
    const last = requests.at(-1);
    if (last && requests.length === room) {
      job.after = last.device_id;
    } else {
      this.#startedJobs.shift();
      this.#finishJob(job);
    }
    return true;
  }

  #fullDevices(): string[] {
    return [...this.#inFlight].filter(([, count]) => count >= DEVICE_WINDOW).map(([id]) => id);
  }

  /**
   * Hands the requests to the broker; each holds a place in the windows until taken and
   * acknowledged. Returns, per request, when the broker took it (or it failed).
   */
  #send(requests: OutgoingRequest[]): Promise<unknown>[] {
    return requests.map((request) => {
      const deviceId = request.device_id;
      this.#inFlight.set(deviceId, (this.#inFlight.get(deviceId) ?? 0) + 1);
      this.#handedOver++;
      const handed = this.#publish(requestTopic(request.topic_id, request.job_id), requestPayload(request));
      void handed
        .then(
          () => undefined,
          (error: unknown) =>
            this.#logger.error({ err: error, device: deviceId }, 'publishing a request failed'),
        )
        .finally(() => {
          this.#handedOver--;
          this.#signal();
        });
      void handed
        .then(({ acknowledged }) => acknowledged)
        .catch(() => undefined)
        .finally(() => {
          const count = (this.#inFlight.get(deviceId) ?? 1) - 1;
          if (count > 0) this.#inFlight.set(deviceId, count);
          else this.#inFlight.delete(deviceId);
          this.#signal();
        });
      return handed.catch(() => undefined);
    });
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
        const delay = Math.min(Math.max(deadline - this.#now(), 0), MAX_TIMER_MS);
        this.#timer = setTimeout(() => {
          this.#timer = null;
          if (this.#expiring) return;
          this.#expiring = this.#expire();
          this.#track(this.#expiring);
        }, delay);
      })(),
    );
  }

  /**
   * Once a change of targets committed: an abort rule's cancels go to the devices at once (within
   * a second of the threshold crossed, CONTRACT §9), and the jobs it finished are logged.
   */
  readonly #onSettled = ({ finished, cancels }: Settled): void => {
    if (cancels.length > 0) this.#track(this.#sendCancels(cancels));
    this.#logFinished(finished);
  };

  /** The notable event of a job its targets finished (a user's cancel is logged by the API). */
  readonly #logFinished = (jobs: Job[]): void => {
    for (const job of jobs) {
      this.#logger.info(
        {
          job: job.id,
          account: job.customer_id,
          status: job.job_status,
          successful: job.progress_success,
          failed: job.progress_failures,
          canceled: job.progress_canceled,
        },
        'job finished',
      );
    }
  };

  async #expire(): Promise<void> {
    try {
      while (
        (await this.#store.expireTargets(this.#now(), EXPIRE_BATCH, SETTLE_RULES, this.#onSettled)) ===
          EXPIRE_BATCH &&
        !this.#closed
      ) {
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
