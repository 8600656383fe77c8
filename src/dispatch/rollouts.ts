import { ratePerMinute, sendAllowance, sendSlots } from '../jobs/rollout/pacing.js';
import { scheduleAt } from '../jobs/rollout/schedule.js';
import { rolloutStateAt } from '../jobs/rollout/state.js';
import { isFinishedJob, type Millis } from '../model/job.js';
import type { CancelNotice, DispatchStore, OutgoingRequest, RolloutJob } from '../store/store.js';
import type { Logger } from './dispatcher.js';

/** How often a job with a rate is looked at: at rates above one a tick, a tick's sends go together. */
export const ROLLOUT_TICK_MS = 100;
/** How often jobs with work that may have become possible (a retry due, a window open, a device online) are looked at. */
const ACTIVE_TICK_MS = 250;
/** With no rollout at all: how soon one created on another node is noticed. */
const IDLE_TICK_MS = 1000;
/** Rollout jobs looked at per tick. */
const JOBS_PER_TICK = 1000;

/** What the tick needs of the dispatcher's flow control. */
export interface RolloutOutlet {
  /** Requests this node may hand over now. */
  room(): number;
  /** Devices with as many requests awaiting acknowledgement as they may have. */
  fullDevices(): string[];
  send(requests: OutgoingRequest[]): void;
  sendCancels(notices: CancelNotice[]): Promise<void>;
}

/**
 * The rollout tick (CONTRACT §9): the queued targets of a governed job are sent only here, as the
 * rules of src/jobs/rollout/ allow now. The job's pace and counts live in its row, and each send
 * slot is taken by a guarded UPDATE, so the limits hold across every node and restart: this node
 * only remembers where in a job's targets it looked last. Each tick reads the active jobs through
 * a partial index and takes at most a tick's worth of targets per job, through an index, so a
 * 100,000-target job costs the same per tick as a small one.
 */
export class RolloutTicker {
  readonly #store: DispatchStore;
  readonly #outlet: RolloutOutlet;
  readonly #logger: Logger;
  readonly #now: () => Millis;
  /** Per job, the device after which this node looks for queued targets next. */
  readonly #cursors = new Map<number, string>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;

  constructor(options: { store: DispatchStore; outlet: RolloutOutlet; logger: Logger; now: () => Millis }) {
    this.#store = options.store;
    this.#outlet = options.outlet;
    this.#logger = options.logger;
    this.#now = options.now;
  }

  /** Looks now (a job was created or resumed, a device came online, room freed up). */
  poke(): void {
    if (this.#closed) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#running = this.#run().finally(() => {
      this.#running = null;
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  async #run(): Promise<void> {
    let delay = IDLE_TICK_MS;
    try {
      delay = await this.tick();
    } catch (error) {
      this.#logger.error({ err: error }, 'rollout tick failed');
    }
    if (this.#closed) return;
    if (this.#again) {
      this.#again = false;
      delay = 0;
    }
    this.#timer = setTimeout(() => this.poke(), delay);
  }

  /** One look at every active rollout job; answers how soon to look again (ms). */
  async tick(): Promise<number> {
    const jobs = await this.#store.rolloutJobs(JOBS_PER_TICK);
    const known = new Set(jobs.map((job) => job.id));
    for (const id of this.#cursors.keys()) if (!known.has(id)) this.#cursors.delete(id);
    let soonest = jobs.length === 0 ? IDLE_TICK_MS : ACTIVE_TICK_MS;
    for (const job of jobs) {
      if (this.#closed) break;
      soonest = Math.min(soonest, await this.#step(job));
    }
    return soonest;
  }

  /** What one job may do now; answers how soon it wants another look. */
  async #step(job: RolloutJob): Promise<number> {
    const now = this.#now();
    if (isFinishedJob(job.job_status)) {
      await this.#store.closeRollout(job.id);
      return ACTIVE_TICK_MS;
    }
    const ended = scheduleAt(job.schedule, now).ended;
    if (ended !== null) {
      await this.#outlet.sendCancels(await this.#store.endRollout(job.id, ended, now));
      return ACTIVE_TICK_MS;
    }
    const state = rolloutStateAt(job.rollout_state, job.job_status, job.schedule, now);
    const starting = job.job_status === 'new' && state !== 'scheduled';
    if (state !== job.rollout_state || starting) {
      if (!(await this.#store.moveRolloutState(job.id, job.rollout_state, state, now))) return 0;
    }
    if (state !== 'running') return ACTIVE_TICK_MS;
    const rate = ratePerMinute(job.rollout, {
      notified: job.notified_count,
      succeeded: job.progress_success,
    });
    const slots = sendSlots(rate, job.next_send_at, now, ROLLOUT_TICK_MS);
    const limit = Math.min(sendAllowance(job.rollout, slots, job.in_flight), this.#outlet.room());
    const paced =
      rate === null ? ACTIVE_TICK_MS : Math.max(ROLLOUT_TICK_MS, Math.min(60_000 / rate, ACTIVE_TICK_MS));
    if (limit <= 0) {
      const due = slots.count === 0 && job.next_send_at !== null ? job.next_send_at - now : paced;
      return Math.max(0, Math.min(due, ACTIVE_TICK_MS));
    }
    const after = this.#cursors.get(job.id) ?? '';
    const requests = await this.#store.takeRolloutRequests(
      {
        jobId: job.id,
        sendSeq: job.send_seq,
        limit,
        nextSendAt: slots.nextSendAt,
        afterDeviceId: after,
        skipDeviceIds: this.#outlet.fullDevices(),
      },
      now,
    );
    this.#outlet.send(requests);
    const last = requests.at(-1);
    if (last !== undefined && requests.length === limit) {
      this.#cursors.set(job.id, last.device_id);
      return rate === null ? 0 : paced;
    }
    // Reached the end of the job's queued targets: from the start again (some may be due by then).
    this.#cursors.delete(job.id);
    return after !== '' && requests.length < limit ? ROLLOUT_TICK_MS : paced;
  }
}
