import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../dispatch/harness.js';
import { ALICE, type Asked, api, Fleet, Node, startClusterBackends, within } from './nodes.js';

/**
 * Rollouts on several nodes (CONTRACT §9: "the rollout limits hold across all nodes together"),
 * seen from the devices' receive times: three nodes on one PostgreSQL and one Mosquitto tick every
 * rollout job at once. A job at 120 a minute is received 500 ms apart whichever node sends; a job
 * whose devices fail is aborted by its rule, and nothing reaches a device after the abort.
 */

const PACED = 12;
const FAILING = 16;
/** How long a simulated device works on a request. */
const LATENCY_MS = 500;
/** Delivery jitter one receipt may add to the pace (the broker, three processes on two shared cores). */
const JITTER_MS = 400;
/** A request published just before the abort's cancels may arrive just after them. */
const IN_FLIGHT_MS = 100;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface JobBody {
  id: number;
  job_status: string;
  rollout_state: string;
  abort_reason: string | null;
  job_completion_time: string | null;
  progress_success: number;
  progress_failures: number;
  progress_canceled: number;
  progress_pending: number;
}

const deviceId = (n: number) => `00000000-00000000-0000C0DE-${n.toString(16).padStart(8, '0').toUpperCase()}`;
const ofJob = (asked: Asked[], job: number) =>
  asked.filter((one) => one.job === job).sort((a, b) => a.at - b.at);

describe('rollouts on three nodes', () => {
  it('keep the pace of a job across nodes, and an abort stops every node sending', async () => {
    const began = Date.now();
    const dir = tempDir();
    dirs.push(dir);
    const { broker, deviceUrl, nodeArgs } = await startClusterBackends(dir);
    const nodes = await Promise.all(['a', 'b', 'c'].map((id) => Node.start(id, nodeArgs)));
    const nodesUp = Date.now() - began;
    const failing = new Set(Array.from({ length: FAILING }, (_, n) => deviceId(PACED + n)));
    const fleet = new Fleet(deviceUrl, LATENCY_MS, (device) =>
      failing.has(device) ? 'failed' : 'successful',
    );
    try {
      const calls = nodes.map((node) => api(node.url, ALICE.username, ALICE.password));
      const [a, b, c] = calls as [(typeof calls)[number], (typeof calls)[number], (typeof calls)[number]];
      const created = await a<{ list: { id: string; device_token: string }[] }>(
        'POST',
        '/ws/v1/devices/inventory',
        Array.from({ length: PACED + FAILING }, (_, n) => ({ id: deviceId(n) })),
      );
      await fleet.connect(created.body.list);
      await within(20_000, 'every device connected', async () => {
        const page = await b<{ count: number }>(
          'GET',
          `/ws/v1/devices/inventory?query=${encodeURIComponent("connection_status = 'connected'")}`,
        );
        return page.body.count === PACED + FAILING;
      });
      const finished = (call: typeof a, id: number) =>
        within(30_000, `job ${id} finished`, async () => {
          const job = (await call<JobBody>('GET', `/ws/v1/jobs/${id}`)).body;
          return ['complete', 'failed', 'canceled'].includes(job.job_status) ? job : false;
        });

      // 120 a minute: every node's tick looks at the job, one slot at a time
      const paced = await b<JobBody>('POST', '/ws/v1/jobs/inventory', {
        job_type: 'update_firmware',
        targets: { devices: Array.from({ length: PACED }, (_, n) => deviceId(n)) },
        rollout: { max_per_minute: 120 },
      });
      expect(paced.status).toBe(201);
      expect(await finished(c, paced.body.id)).toMatchObject({
        job_status: 'complete',
        progress_success: PACED,
      });
      const received = ofJob(fleet.requests, paced.body.id).map((asked) => asked.at);
      expect(received).toHaveLength(PACED);
      // k sends after one, at least k × 500 ms later (less one send's jitter), never a burst
      for (let i = 0; i < received.length; i++) {
        for (let k = 1; i + k < received.length; k++) {
          expect((received[i + k] as number) - (received[i] as number)).toBeGreaterThanOrEqual(
            k * 500 - JITTER_MS,
          );
        }
      }
      // where the pace is kept: the targets' start times, whichever node started them
      const targets = await a<{ list: { start_time: string }[] }>(
        'GET',
        `/ws/v1/jobs/${paced.body.id}/targets?size=100`,
      );
      const starts = targets.body.list.map((target) => Date.parse(target.start_time)).sort((x, y) => x - y);
      for (let i = 1; i < starts.length; i++) {
        expect((starts[i] as number) - (starts[i - 1] as number)).toBeGreaterThanOrEqual(500);
      }
      const span = (received.at(-1) as number) - (received[0] as number);
      expect(span).toBeLessThan((PACED - 1) * 500 + 2_000);

      // every device fails: the third failure crosses 50 %, with the requests sent after it in progress
      const aborting = await c<JobBody>('POST', '/ws/v1/jobs/inventory', {
        job_type: 'update_firmware',
        targets: { devices: [...failing] },
        rollout: { max_per_minute: 300 },
        abort: [{ failure: 'failed', threshold_percent: 50, min_executed: 3, action: 'cancel' }],
      });
      expect(aborting.status).toBe(201);
      const aborted = await finished(a, aborting.body.id);
      expect(aborted).toMatchObject({
        job_status: 'canceled',
        rollout_state: 'aborted',
        abort_reason: '100.00 % of 3 ended targets failed (threshold 50 %)',
      });
      const abortedAt = Date.parse(aborted.job_completion_time as string);
      const crossedAt = (
        fleet.reports
          .filter((report) => report.job === aborting.body.id && report.status === 'failed')
          .sort((x, y) => x.at - y.at)[2] as Asked
      ).at;
      const requests = ofJob(fleet.requests, aborting.body.id);
      const working = new Set(requests.map((asked) => asked.device)).size - 3;
      expect(working).toBeGreaterThan(0);
      const cancels = await within(5_000, 'a cancel to each device still working', async () => {
        const told = ofJob(fleet.cancels, aborting.body.id);
        return told.length >= working ? told : false;
      });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(ofJob(fleet.requests, aborting.body.id)).toHaveLength(requests.length);
      const lastRequest = (requests.at(-1) as Asked).at;
      console.log(
        `rollout on three nodes (up in ${nodesUp} ms): ${PACED} requests at 120/min received over ${span} ms (min gap ${Math.min(...received.slice(1).map((at, i) => at - (received[i] as number)))} ms); abort ${abortedAt - crossedAt} ms after the crossing report, cancels received ${cancels.map((cancel) => cancel.at - crossedAt).join(', ')} ms after it; last request ${lastRequest - abortedAt} ms after the abort; ${requests.length} of ${FAILING} sent`,
      );
      expect(abortedAt - crossedAt).toBeLessThan(1_000);
      for (const cancel of cancels) expect(cancel.at - crossedAt).toBeLessThan(1_000);
      // The abort's time is its transaction's clock; it takes effect at its commit, after which its
      // cancels go out: a request received after that time was taken before the commit (by any
      // node), so its target was in progress and its device was sent a cancel.
      const told = new Set(cancels.map((cancel) => cancel.device));
      expect(requests.filter((asked) => asked.at > abortedAt && !told.has(asked.device))).toEqual([]);
      expect(lastRequest).toBeLessThanOrEqual((cancels[0] as Asked).at + IN_FLIGHT_MS);
      // a device still working keeps the result it reported before its cancel came, if it did
      const settled = await within(10_000, 'the canceled targets acknowledged', async () => {
        const job = (await b<JobBody>('GET', `/ws/v1/jobs/${aborting.body.id}`)).body;
        return job.progress_pending === 0 ? job : false;
      });
      expect(settled.progress_failures).toBeGreaterThanOrEqual(3);
      expect(settled.progress_failures + settled.progress_canceled).toBe(FAILING);
    } finally {
      await fleet.close();
      for (const node of nodes) await node.stop('SIGKILL');
      await broker.stop();
    }
  }, 120_000);
});
