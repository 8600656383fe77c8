import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StoreTotals } from '../store/store.js';

/** Seconds; from a fast indexed read to a slow export page. */
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LOOP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** How often the event loop's delay is sampled. */
const LOOP_SAMPLE_MS = 100;

/**
 * The Prometheus series of CONTRACT §12, in a registry of their own (one per service instance, so
 * that tests can run many). The store gauges are read from the store's totals at scrape time.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'fleetjobs_http_requests_total',
    help: 'HTTP requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'fleetjobs_http_request_duration_seconds',
    help: 'Time to answer an HTTP request, by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry],
  });
  readonly dispatchPublishes = new Counter({
    name: 'fleetjobs_dispatch_publishes_total',
    help: 'Job requests and cancels handed to the MQTT broker',
    registers: [this.registry],
  });
  readonly statusReports = new Counter({
    name: 'fleetjobs_status_reports_total',
    help: 'Job status reports received from devices',
    registers: [this.registry],
  });
  readonly storeQueryDuration = new Histogram({
    name: 'fleetjobs_store_query_duration_seconds',
    help: 'Time the store took per statement',
    buckets: QUERY_BUCKETS,
    registers: [this.registry],
  });
  readonly monitorDeliveries = new Counter({
    name: 'fleetjobs_monitor_deliveries_total',
    help: 'Event deliveries to monitors, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly #loopDelay = new Histogram({
    name: 'fleetjobs_event_loop_delay_seconds',
    help: `How late a timer due every ${LOOP_SAMPLE_MS} ms fired: the event loop's delay`,
    buckets: LOOP_BUCKETS,
    registers: [this.registry],
  });
  readonly #loopTimer: NodeJS.Timeout;
  readonly #node = new Gauge({
    name: 'fleetjobs_node_info',
    help: 'The node these series come from: its --node-id (CONTRACT §8), value 1',
    labelNames: ['node'] as const,
    registers: [this.registry],
  });

  /** Names the node in the series: `fleetjobs_node_info{node="<id>"} 1`. */
  nameNode(nodeId: string): void {
    this.#node.reset();
    this.#node.set({ node: nodeId }, 1);
  }

  /** `totals`: the store's totals (kept by the store, cheap to read), read once per scrape. */
  constructor(totals: () => Promise<StoreTotals>) {
    collectDefaultMetrics({ register: this.registry });
    // The three gauges collect in parallel: they share one read.
    let reading: Promise<StoreTotals> | undefined;
    const current = (): Promise<StoreTotals> => {
      if (reading === undefined) {
        reading = totals();
        const done = () => {
          reading = undefined;
        };
        reading.then(done, done);
      }
      return reading;
    };
    const gauge = (
      name: string,
      help: string,
      labelNames: string[],
      set: (g: Gauge, t: StoreTotals) => void,
    ) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers: [this.registry],
        async collect() {
          set(this, await current());
        },
      });
    gauge('fleetjobs_jobs', 'Jobs in the store, by status', ['status'], (g, t) => {
      for (const [status, count] of Object.entries(t.jobs)) g.set({ status }, count);
    });
    gauge(
      'fleetjobs_targets',
      'Job targets in the store, by progress: successful, failed (or timed out), canceled, pending',
      ['status'],
      (g, t) => {
        for (const [status, count] of Object.entries(t.targets)) g.set({ status }, count);
      },
    );
    gauge('fleetjobs_devices_connected', 'Devices connected, in the store', [], (g, t) =>
      g.set(t.devicesConnected),
    );

    let due = performance.now() + LOOP_SAMPLE_MS;
    this.#loopTimer = setInterval(() => {
      const late = performance.now() - due;
      this.#loopDelay.observe(Math.max(0, late) / 1000);
      due = performance.now() + LOOP_SAMPLE_MS;
    }, LOOP_SAMPLE_MS);
    this.#loopTimer.unref();
  }

  /** One statement's duration, as the store reports it. */
  readonly storeQuery = (durationMillis: number): void => {
    this.storeQueryDuration.observe(durationMillis / 1000);
  };

  /** The text of a scrape. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }

  close(): void {
    clearInterval(this.#loopTimer);
  }
}
