import { createHmac, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import type { BaseLogger } from 'pino';
import { documentJson, documentXml } from '../api/formats/messages.js';
import type { StoredEvent } from '../model/event.js';
import type { LeasedMonitor } from '../model/monitor.js';
import type { Metrics } from '../observability/metrics.js';
import type { DeliveryState, Store } from '../store/store.js';

type Logger = Pick<BaseLogger, 'info' | 'warn' | 'error'>;

export interface DeliveryOptions {
  store: Store;
  logger: Logger;
  metrics?: Metrics | undefined;
  /** The clock of batching, backoff and leases; Date.now unless a test gives one. */
  now?: () => number;
  /** This node's name in the monitors' leases; a new one per process by default. */
  nodeId?: string;
  /** How long a lease lasts unless renewed (renewed on every pass). */
  leaseMs?: number;
  /** How often a pass runs when started. */
  intervalMs?: number;
  /** How long a receiver has to answer a batch with a 2xx. */
  timeoutMs?: number;
}

/** §10: a batch without a 2xx is retried after 1 s, doubling up to 15 min. */
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 15 * 60_000;
/** A non-persistent monitor drops a batch after this many tries. */
const NON_PERSISTENT_TRIES = 3;
/** After this long without a success a monitor is disabled. */
const DISABLE_AFTER_MS = 24 * 3_600_000;
/** How often (in passes) old events are pruned. */
const PRUNE_EVERY_PASSES = 600;
/** Batches one monitor sends per pass at most: a busy monitor does not starve the others' passes. */
const BATCHES_PER_PASS = 20;

export const backoffMs = (attempts: number): number =>
  Math.min(FIRST_BACKOFF_MS * 2 ** Math.max(attempts - 1, 0), MAX_BACKOFF_MS);

/** A monitor's HTTP request for a batch: the body as sent (compressed or not) and its headers. */
export function batchRequest(monitor: LeasedMonitor, events: readonly StoredEvent[]) {
  const text = monitor.format === 'xml' ? documentXml(events) : documentJson(events);
  const gzip = monitor.compression === 'gzip';
  const body = gzip ? gzipSync(text) : Buffer.from(text);
  const headers: Record<string, string> = {};
  for (const line of monitor.headers) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  Object.assign(headers, {
    'Content-Type': `${monitor.format === 'xml' ? 'application/xml' : 'application/json'}; charset=utf-8`,
    ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    ...(monitor.auth_token === null
      ? {}
      : { Authorization: `Basic ${Buffer.from(monitor.auth_token).toString('base64')}` }),
    ...(monitor.secret === null
      ? {}
      : {
          'X-Fleetjobs-Signature': `sha256=${createHmac('sha256', monitor.secret).update(body).digest('hex')}`,
        }),
  });
  return { body, headers };
}

/**
 * Sends each active monitor's events to its receiver (§10), at least once and in order: a batch
 * is the next `batch_size` events after the last one delivered, sent once that many wait or the
 * first has waited `batch_duration`; until it gets a 2xx, it is sent again (backoff) and nothing
 * after it goes. Its progress is kept in the monitor's row, under a lease that one node at a time
 * holds (taken by a guarded UPDATE, renewed on every pass): if that node dies, another takes over
 * when the lease expires and sends again from the last delivery saved.
 */
export class MonitorDelivery {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #metrics: Metrics | undefined;
  readonly #now: () => number;
  readonly #nodeId: string;
  readonly #leaseMs: number;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #sending = new Map<number, Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #passes = 0;
  #passing: Promise<void> | undefined;

  constructor(options: DeliveryOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#now = options.now ?? Date.now;
    this.#nodeId = options.nodeId ?? randomUUID();
    this.#leaseMs = options.leaseMs ?? 30_000;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#passing ??= this.pass()
        .catch((error: unknown) => this.#logger.error({ err: error }, 'monitor delivery pass failed'))
        .finally(() => {
          this.#passing = undefined;
        });
    }, this.#intervalMs);
  }

  /** Stops the passes and waits for the batches in flight. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#passing;
    await Promise.all(this.#sending.values());
  }

  /**
   * One pass: takes or renews the leases, then sends what is due of each leased monitor (those
   * still busy from an earlier pass go on undisturbed). Resolves when this pass's sends are done.
   */
  async pass(): Promise<void> {
    if (++this.#passes % PRUNE_EVERY_PASSES === 1) await this.#store.pruneEvents(this.#now());
    const monitors = await this.#store.leaseMonitors(this.#nodeId, this.#now(), this.#leaseMs);
    const started: Promise<void>[] = [];
    for (const monitor of monitors) {
      if (this.#sending.has(monitor.id)) continue;
      const sending = this.#deliver(monitor)
        .catch((error: unknown) =>
          this.#logger.error({ err: error, monitor: monitor.id }, 'monitor delivery failed'),
        )
        .finally(() => this.#sending.delete(monitor.id));
      this.#sending.set(monitor.id, sending);
      started.push(sending);
    }
    await Promise.all(started);
  }

  async #deliver(leased: LeasedMonitor): Promise<void> {
    let monitor = leased;
    for (let batch = 0; batch < BATCHES_PER_PASS; batch++) {
      const now = this.#now();
      if (monitor.next_attempt_at !== null && now < monitor.next_attempt_at) return;
      const events = await this.#store.listEvents({
        accountId: monitor.customer_id,
        afterId: monitor.cursor_id,
        topics: monitor.topics,
        limit: monitor.batch_size,
      });
      const first = events[0];
      const last = events.at(-1);
      if (first === undefined || last === undefined) return;
      const retrying = monitor.attempts > 0;
      const full = events.length >= monitor.batch_size;
      if (!retrying && !full && now - first.time < monitor.batch_duration * 1000) return;
      const state = (await this.#send(monitor, events))
        ? this.#succeeded(last, now)
        : this.#failed(monitor, last, now);
      if (!(await this.#store.saveDelivery(monitor.id, this.#nodeId, state))) return;
      if (state.disable) {
        this.#logger.warn(
          { monitor: monitor.id, account: monitor.customer_id, url: monitor.url },
          'monitor disabled: no delivery succeeded for 24 hours',
        );
        return;
      }
      monitor = { ...monitor, ...state };
      if (state.attempts > 0) return;
    }
  }

  #succeeded(last: StoredEvent, now: number): DeliveryState {
    return {
      cursor_id: last.id,
      attempts: 0,
      next_attempt_at: null,
      failing_since: null,
      last_sent: now,
      last_sent_uuid: last.uuid,
      disable: false,
    };
  }

  /** Waits with backoff; a non-persistent monitor drops the batch after its last try. */
  #failed(monitor: LeasedMonitor, last: StoredEvent, now: number): DeliveryState {
    const attempts = monitor.attempts + 1;
    const failingSince = monitor.failing_since ?? now;
    const drop = !monitor.persistent && attempts >= NON_PERSISTENT_TRIES;
    if (drop) this.#metrics?.monitorDeliveries.inc({ result: 'dropped' });
    return {
      cursor_id: drop ? last.id : monitor.cursor_id,
      attempts: drop ? 0 : attempts,
      next_attempt_at: drop ? null : now + backoffMs(attempts),
      failing_since: failingSince,
      last_sent: monitor.last_sent,
      last_sent_uuid: monitor.last_sent_uuid,
      disable: now - failingSince >= DISABLE_AFTER_MS,
    };
  }

  /** true on a 2xx within the timeout. */
  async #send(monitor: LeasedMonitor, events: readonly StoredEvent[]): Promise<boolean> {
    const { body, headers } = batchRequest(monitor, events);
    try {
      const response = await fetch(monitor.url, {
        method: monitor.method,
        headers,
        body,
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
      await response.arrayBuffer();
      const ok = response.status >= 200 && response.status < 300;
      this.#metrics?.monitorDeliveries.inc({ result: ok ? 'success' : 'failure' });
      return ok;
    } catch {
      this.#metrics?.monitorDeliveries.inc({ result: 'failure' });
      return false;
    }
  }
}
