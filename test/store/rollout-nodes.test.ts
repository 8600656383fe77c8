import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROLLOUT_TICK_MS, RolloutTicker } from '../../src/dispatch/rollouts.js';
import { SETTLE_RULES } from '../../src/jobs/rollout/settle.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import type { OutgoingRequest, Store } from '../../src/store/store.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { setConnection } from '../setup/presence.js';
import { jobForAllDevices } from './new-job.js';

/**
 * CONTRACT §9: the limits hold across all nodes together. Three rollout tickers, each on its own
 * connection pool to one PostgreSQL database (three nodes), tick at the same moments of one
 * injected clock through two simulated minutes: together they start at most 120 a minute, 500 ms
 * apart, and never more than max_in_flight at once.
 */

const NODES = 3;
const TARGETS = 400;
const deviceId = (n: number) => `00000000-00000000-0000AB00-${n.toString(16).toUpperCase().padStart(8, '0')}`;

describe('rollout limits across three nodes on PostgreSQL', () => {
  let stores: Store[] = [];
  let now = Date.UTC(2026, 11, 1);

  beforeAll(async () => {
    const url = await newPostgresDatabase();
    stores = [];
    for (let node = 0; node < NODES; node++) stores.push(await openPostgresStore(url));
  });
  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  it('starts at most max_per_minute in any minute and keeps max_in_flight, whichever node sends', async () => {
    const [first] = stores as [Store];
    const account = (await first.ensureAccount('acme', now)).id;
    await first.createDevices(
      account,
      Array.from({ length: TARGETS }, (_, i) => ({ id: deviceId(i), token_hash: 'hash' })),
    );
    for (let i = 0; i < TARGETS; i++) await setConnection(first, deviceId(i), 'connected', now);
    const job = await first.createJob(
      jobForAllDevices(account, now, {
        job_type: 'update_firmware',
        timeout: 600,
        offline_timeout: 86_400,
        controls: {
          rollout: { max_per_minute: 120, max_in_flight: 3 },
          abort: null,
          retry: null,
          schedule: null,
        },
      }),
    );
    const sends: { node: number; at: number; request: OutgoingRequest }[] = [];
    const inProgress: OutgoingRequest[][] = stores.map(() => []);
    let peakInFlight = 0;
    const tickers = stores.map(
      (store, node) =>
        new RolloutTicker({
          store,
          logger: pino({ level: 'silent' }),
          now: () => now,
          outlet: {
            room: () => 64,
            fullDevices: () => [],
            send: (requests) => {
              for (const request of requests) sends.push({ node, at: now, request });
              inProgress[node]?.push(...requests);
            },
            sendCancels: async () => undefined,
          },
        }),
    );
    for (let tick = 0; tick < 1200; tick++) {
      await Promise.all(tickers.map((ticker) => ticker.tick()));
      peakInFlight = Math.max(peakInFlight, inProgress.flat().length);
      // Each device answers two ticks after its request, through the node that sent it.
      if (tick % 2 === 1) {
        await Promise.all(
          stores.map((store, node) => {
            const answered = (inProgress[node] ?? []).splice(0);
            return store.applyStatuses(
              answered.map((request) => ({
                device_id: request.device_id,
                job_id: job.id,
                report: { status: 'successful' as const },
              })),
              now,
              SETTLE_RULES,
            );
          }),
        );
      }
      now += ROLLOUT_TICK_MS;
    }
    expect(new Set(sends.map((send) => send.request.device_id)).size).toBe(sends.length);
    expect(new Set(sends.map((send) => send.node)).size).toBeGreaterThan(1);
    expect(sends.length).toBeGreaterThanOrEqual(230);
    expect(sends.length).toBeLessThanOrEqual(241);
    const times = sends.map((send) => send.at);
    for (let i = 1; i < times.length; i++)
      expect((times[i] as number) - (times[i - 1] as number)).toBeGreaterThanOrEqual(500);
    for (const start of times)
      expect(times.filter((at) => at >= start && at < start + 60_000).length).toBeLessThanOrEqual(120);
    expect(peakInFlight).toBeLessThanOrEqual(3);
    expect((await first.getJob(account, job.id))?.progress_success).toBe(
      sends.length - inProgress.flat().length,
    );
  });
});
