import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { CLAIM_TTL_MS } from '../../src/dispatch/dispatcher.js';
import { tempDir } from '../dispatch/harness.js';
import { ALICE, api, Fleet, Node, startClusterBackends, within } from './nodes.js';

/**
 * The Must-reach of several nodes (CONTRACT §8), on a real PostgreSQL and a real Mosquitto set up
 * by `fleetjobs broker-config`: three nodes, simulated devices, jobs created round-robin on the
 * nodes, one node killed with SIGKILL mid-run and another restarted: the 500 devices and
 * 50 jobs, each job to 100 of them (5,000 targets, each device in 10 jobs), so that it runs in about
 * a minute and a half on two cores.
 */

const DEVICES = 500;
const JOBS = 50;
/** Each job targets this many devices, a window moving by DEVICES / JOBS per job: each device is in 10 jobs. */
const TARGETS = 100;
/** How long a simulated device works on a job. */
const LATENCY_MS = 1_500;
/**
 * A request taken while its target was still in progress may reach the device after the target's
 * terminal status was stored: one published just before, or one sent again after the node death
 * (its target's status on its way meanwhile). Up to 1.5 s was seen on a loaded 2-core machine.
 */
const IN_FLIGHT_MS = 3_000;
const STEP = DEVICES / JOBS;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface JobBody {
  id: number;
  job_status: string;
  target_count: number;
  progress_success: number;
  progress_failures: number;
  progress_canceled: number;
  progress_pending: number;
  job_submit_time: string;
  job_completion_time: string | null;
}
interface TargetBody {
  device_id: string;
  status: string;
  end_time: string | null;
}

describe('three nodes on one PostgreSQL and one Mosquitto', () => {
  it('lose nothing when one is killed and another restarted mid-run', async () => {
    const dir = tempDir();
    dirs.push(dir);
    const { broker, deviceUrl, nodeArgs } = await startClusterBackends(dir);
    const fleet = new Fleet(deviceUrl, LATENCY_MS);
    const nodes: Node[] = [];
    try {
      // the broker and the nodes that started are stopped (finally) also when one fails to start
      const starts = await Promise.allSettled(['a', 'b', 'c'].map((id) => Node.start(id, nodeArgs)));
      for (const start of starts) if (start.status === 'fulfilled') nodes.push(start.value);
      for (const start of starts) if (start.status === 'rejected') throw start.reason;
      const calls = nodes.map((node) => api(node.url, ALICE.username, ALICE.password));
      const created = await calls[0]?.<{ list: { id: string; device_token: string }[] }>(
        'POST',
        '/ws/v1/devices/inventory',
        Array.from({ length: DEVICES }, (_, n) => ({
          id: `00000000-00000000-00000000-${n.toString(16).padStart(8, '0').toUpperCase()}`,
        })),
      );
      const devices = created?.body.list ?? [];
      expect(devices).toHaveLength(DEVICES);
      // every node learns of them (any node may apply a presence): their logins are live on the broker
      const t0 = Date.now();
      await fleet.connect(devices);
      await within(60_000, 'every device connected', async () => {
        const page = await calls[1]?.<{ count: number }>(
          'GET',
          `/ws/v1/devices/inventory?query=${encodeURIComponent("connection_status = 'connected'")}`,
        );
        return page?.body.count === DEVICES;
      });

      const connected = Date.now() - t0;
      const [a, b, c] = nodes as [Node, Node, Node];
      let living = [a, b, c];
      const jobIds: number[] = [];
      /** The jobs created on the node that is killed. */
      const onKilled: number[] = [];
      let restarted: Node | undefined;
      let killedAt = 0;
      for (let n = 0; n < JOBS; n++) {
        const node = living[n % living.length] as Node;
        const job = await api(node.url, ALICE.username, ALICE.password)<JobBody>(
          'POST',
          '/ws/v1/jobs/inventory',
          {
            job_type: 'reboot',
            targets: {
              devices: Array.from({ length: TARGETS }, (_, k) => devices[(n * STEP + k) % DEVICES]?.id),
            },
            timeout: 120,
          },
        );
        expect(job.status).toBe(201);
        jobIds.push(job.body.id);
        if (node === b) onKilled.push(job.body.id);
        if (n === Math.floor(JOBS / 3)) {
          // right after it took a job: b dies with work in its hands
          killedAt = Date.now();
          await b.stop('SIGKILL');
          living = [a, c];
        }
        if (n === Math.floor((2 * JOBS) / 3)) {
          expect(await c.stop()).toBe(0);
          restarted = await Node.start('c', nodeArgs);
          nodes.push(restarted);
          living = [a, restarted];
        }
      }
      const lastCreated = Date.now();

      const reader = api(a.url, ALICE.username, ALICE.password);
      const jobs = await within(60_000, 'every job complete', async () => {
        const page = await reader<{ list: JobBody[] }>('GET', '/ws/v1/jobs/inventory?size=1000');
        return page.body.list.length === JOBS && page.body.list.every((job) => job.job_status === 'complete')
          ? page.body.list
          : false;
      });
      const finished = Date.now();

      // The killed node's work (its jobs, also those created just before it died) finished within
      // its claim's expiry (a sweep runs then) plus the jobs' own time: the longest any job of the
      // living nodes took from its creation (on a loaded machine, far more than a device's latency).
      const took = (job: JobBody) =>
        Date.parse(job.job_completion_time ?? '') - Date.parse(job.job_submit_time);
      const ownTime = Math.max(...jobs.filter((job) => !onKilled.includes(job.id)).map(took));
      const killedDone = Math.max(
        ...jobs
          .filter((job) => onKilled.includes(job.id))
          .map(
            (job) =>
              Date.parse(job.job_completion_time ?? '') - Math.max(killedAt, Date.parse(job.job_submit_time)),
          ),
      );
      expect(killedDone).toBeLessThanOrEqual(CLAIM_TTL_MS + ownTime);

      for (const job of jobs) {
        // counts agree with the targets
        expect(job).toMatchObject({
          target_count: TARGETS,
          progress_success: TARGETS,
          progress_failures: 0,
          progress_canceled: 0,
          progress_pending: 0,
        });
        const targets = await reader<{ list: TargetBody[] }>(
          'GET',
          `/ws/v1/jobs/${job.id}/targets?size=1000`,
        );
        // every target exactly once, terminal
        expect(targets.body.list).toHaveLength(TARGETS);
        expect(new Set(targets.body.list.map((target) => target.device_id)).size).toBe(TARGETS);
        expect(targets.body.list.every((target) => target.status === 'successful')).toBe(true);
        // no device got a request again once its target was terminal (beyond one already in flight)
        const endOf = new Map(targets.body.list.map((t) => [t.device_id, Date.parse(t.end_time ?? '')]));
        const late = fleet.requests.filter(
          (asked) => asked.job === job.id && asked.at > (endOf.get(asked.device) ?? 0) + IN_FLIGHT_MS,
        );
        expect(late).toEqual([]);
      }
      const repeats = fleet.requests.length - JOBS * TARGETS;
      console.log(
        `three nodes: ${DEVICES} devices connected in ${connected} ms; ${JOBS} jobs x ${TARGETS} devices done ${finished - lastCreated} ms after the last was created; the killed node's ${onKilled.length} jobs ${killedDone} ms after the kill (the longest job of the others took ${ownTime} ms); ${repeats} requests sent again`,
      );
      await restarted?.stop();
      await a.stop();
    } finally {
      await fleet.close();
      for (const node of nodes) await node.stop('SIGKILL');
      await broker.stop();
    }
  }, 300_000);
});
