import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observability/metrics.js';
import type { Store } from '../../src/store/store.js';
import { setConnection } from '../setup/presence.js';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

/** A Prometheus text exposition parsed into samples: `name{labels}` → value; and each `# TYPE`. */
function parse(text: string) {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] ?? '', type[2] ?? '');
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    expect(sample, line).not.toBeNull();
    samples.set(`${sample?.[1]}${sample?.[2] ?? ''}`, Number(sample?.[3]));
  }
  return { samples, types };
}

describe('GET /metrics', () => {
  let h: Harness;
  let store: Store | undefined;
  const metrics = new Metrics(() => {
    if (store === undefined) throw new Error('no store yet');
    return store.totals();
  });
  let alice: Caller;
  /** The SQL of every statement the store timed, as the metrics saw it. */
  const timed: string[] = [];

  beforeAll(async () => {
    h = await Harness.start({
      metrics,
      metricsToken: 's3cret-token',
      store: {
        onQuery: (ms, sql) => {
          timed.push(sql);
          metrics.storeQuery(ms);
        },
      },
    });
    store = h.store;
    alice = await h.user('acme', 'alice');
  });
  afterAll(async () => {
    metrics.close();
    await h.close();
  });

  const scrape = async () => {
    const response = await h.get(null, '/metrics', { authorization: 'Bearer s3cret-token' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return parse(response.body);
  };

  it('needs the bearer token when one is configured', async () => {
    expectError(await h.get(null, '/metrics'), 401);
    expectError(await h.get(null, '/metrics', { authorization: 'Bearer wrong' }), 401);
    expectError(await h.get(null, '/metrics', { authorization: 'Bearer s3cret-token-and-more' }), 401);
    expectError(await h.get(alice, '/metrics'), 401);
  });

  it('has every series of the contract, with its type', async () => {
    const { types } = await scrape();
    expect(Object.fromEntries([...types].filter(([name]) => name.startsWith('fleetjobs_')))).toEqual({
      fleetjobs_http_requests_total: 'counter',
      fleetjobs_http_request_duration_seconds: 'histogram',
      fleetjobs_jobs: 'gauge',
      fleetjobs_targets: 'gauge',
      fleetjobs_devices_connected: 'gauge',
      fleetjobs_dispatch_publishes_total: 'counter',
      fleetjobs_status_reports_total: 'counter',
      fleetjobs_event_loop_delay_seconds: 'histogram',
      fleetjobs_store_query_duration_seconds: 'histogram',
      fleetjobs_monitor_deliveries_total: 'counter',
      // beyond the contract's list: which node answered (its --node-id, once the server names it)
      fleetjobs_node_info: 'gauge',
    });
    expect(types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(types.get('nodejs_heap_size_used_bytes')).toBe('gauge');
  });

  it('counts requests by method, route template and status', async () => {
    await h.get(alice, '/ws/v1/jobs/12345');
    await h.get(alice, '/ws/v1/jobs/67890');
    await h.get(alice, '/no/such/route');
    const { samples } = await scrape();
    const labels = 'method="GET",route="/ws/v1/jobs/:id",status="404"';
    expect(samples.get(`fleetjobs_http_requests_total{${labels}}`)).toBe(2);
    expect(samples.get(`fleetjobs_http_request_duration_seconds_count{${labels}}`)).toBe(2);
    expect(samples.get(`fleetjobs_http_request_duration_seconds_bucket{le="+Inf",${labels}}`)).toBe(2);
    expect(samples.get('fleetjobs_http_requests_total{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect([...samples.keys()].some((key) => key.includes('12345'))).toBe(false);
    expect(samples.get('fleetjobs_store_query_duration_seconds_count')).toBeGreaterThan(0);
  });

  it("times an export's batches with the store's other statements", async () => {
    const before = (await scrape()).samples.get('fleetjobs_store_query_duration_seconds_count') ?? 0;
    timed.length = 0;
    const response = await h.get(alice, '/ws/v1/jobs/bulk');
    expect(response.statusCode).toBe(200);
    expect(timed.some((statement) => /from "jobs"/i.test(statement))).toBe(true);
    const after = (await scrape()).samples.get('fleetjobs_store_query_duration_seconds_count') ?? 0;
    expect(after - before).toBeGreaterThanOrEqual(timed.length);
  });

  it('reports the store totals: jobs by status, targets by progress, devices connected', async () => {
    await h.devices(alice, 3);
    await h.job(alice, { targets: { devices: [deviceId(1), deviceId(2)] } });
    const canceled = await h.job(alice, { targets: { devices: [deviceId(3)] } });
    expect((await h.put(alice, `/ws/v1/jobs/cancel/${canceled.id}`)).statusCode).toBe(200);
    await setConnection(h.store, deviceId(1), 'connected', Date.now());
    const { samples } = await scrape();
    expect(samples.get('fleetjobs_jobs{status="new"}')).toBe(1);
    expect(samples.get('fleetjobs_jobs{status="canceled"}')).toBe(1);
    expect(samples.get('fleetjobs_jobs{status="complete"}')).toBe(0);
    expect(samples.get('fleetjobs_targets{status="pending"}')).toBe(2);
    expect(samples.get('fleetjobs_targets{status="canceled"}')).toBe(1);
    expect(samples.get('fleetjobs_targets{status="successful"}')).toBe(0);
    expect(samples.get('fleetjobs_devices_connected')).toBe(1);
    expect(samples.get('fleetjobs_monitor_deliveries_total')).toBeUndefined();
  });

  it('keeps the totals equal to a count of the jobs, through creates, cancels, deletes and removals', async () => {
    const bob = await h.user('globex', 'bob');
    await h.devices(bob, 5, () => ({}), 9);
    const ids: number[] = [];
    for (let n = 1; n <= 5; n++) ids.push((await h.job(bob, { targets: { devices: [deviceId(n, 9)] } })).id);
    await h.job(bob, { targets: { all: true } });
    expect((await h.put(bob, `/ws/v1/jobs/cancel/${ids[0]},${ids[1]}`)).statusCode).toBe(200);
    expect((await h.delete(bob, `/ws/v1/jobs/inventory/${ids[0]}`)).statusCode).toBe(200);
    expect((await h.delete(bob, `/ws/v1/devices/inventory/${deviceId(3, 9)}`)).statusCode).toBe(200);
    await setConnection(h.store, deviceId(4, 9), 'connected', Date.now());
    await setConnection(h.store, deviceId(1), 'disconnected', Date.now());
    const expected = { jobs: new Map<string, number>(), targets: new Map<string, number>() };
    const add = (map: Map<string, number>, key: string, by: number) => map.set(key, (map.get(key) ?? 0) + by);
    for (const caller of [alice, bob]) {
      const page = (await h.get(caller, '/ws/v1/jobs/inventory')).json() as {
        list: {
          job_status: string;
          progress_success: number;
          progress_failures: number;
          progress_canceled: number;
          progress_pending: number;
        }[];
      };
      for (const job of page.list) {
        add(expected.jobs, job.job_status, 1);
        add(expected.targets, 'successful', job.progress_success);
        add(expected.targets, 'failed', job.progress_failures);
        add(expected.targets, 'canceled', job.progress_canceled);
        add(expected.targets, 'pending', job.progress_pending);
      }
    }
    const { samples } = await scrape();
    for (const [status, count] of expected.jobs)
      expect(samples.get(`fleetjobs_jobs{status="${status}"}`)).toBe(count);
    for (const [status, count] of expected.targets) {
      expect(samples.get(`fleetjobs_targets{status="${status}"}`)).toBe(count);
    }
    expect(samples.get('fleetjobs_devices_connected')).toBe(1);
  });
});

describe('GET /metrics without a token', () => {
  it('is open, and is not in the way of the API routes', async () => {
    const h = await Harness.start();
    try {
      const response = await h.get(null, '/metrics');
      expect(response.statusCode).toBe(200);
      expect(response.body).toContain('fleetjobs_http_requests_total');
    } finally {
      await h.close();
    }
  });
});
