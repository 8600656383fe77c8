import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Caller, deviceId, Harness } from './harness.js';

const JOBS = 2500;
const descriptions = [null, 'alpha', 'Beta', 'beta', 'gamma'];

describe('keyset paging over 2,500 jobs with inserts and deletes between pages', () => {
  let h: Harness;
  let bob: Caller;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    await h.devices(bob, 1);
    for (let i = 0; i < JOBS; i++) {
      await h.jobs.createJob(bob.accountId, 'bob', {
        job_type: 'reboot',
        description: descriptions[i % descriptions.length] ?? null,
        targets: { devices: [deviceId(1)] },
      });
    }
  }, 120_000);
  afterAll(() => h.close());

  const allIds = async (): Promise<number[]> =>
    (await h.get(bob, '/ws/v1/jobs/bulk?fields=id')).body.trim().split('\r\n').slice(1).map(Number);

  async function removeJob(id: number): Promise<void> {
    await h.jobs.cancelJobs(bob.accountId, [id], false);
    const [result] = await h.jobs.deleteJobs(bob.accountId, [id]);
    expect(result?.ok).toBe(true);
  }

  it.each([
    ['the default order (id desc)', ''],
    ['description asc: missing values, ties and case', 'orderby=description%20asc&'],
    [
      'job_submit_time desc with a query',
      `query=${encodeURIComponent("job_type = 'reboot'")}&orderby=job_submit_time&`,
    ],
  ])(
    '%s sees every job that existed throughout exactly once',
    async (_name, parameters) => {
      const initial = new Set(await allIds());
      const deleted = new Set<number>();
      const seen: number[] = [];
      let url: string | undefined = `/ws/v1/jobs/inventory?${parameters}size=100`;
      let pages = 0;
      while (url !== undefined) {
        const response = await h.get(bob, url);
        expect(response.statusCode, response.body).toBe(200);
        const page = response.json();
        expect(page.size).toBe(100);
        expect(page.count).toBe(page.list.length);
        seen.push(...page.list.map((job: { id: number }) => job.id));
        url = page.next_uri;
        if (url !== undefined) {
          expect(page.count).toBe(100);
          expect(url).toContain(`cursor=${encodeURIComponent(page.cursor)}`);
        }
        pages++;
        // Between pages: two new jobs, and two old ones deleted (one already seen, one maybe not).
        for (let i = 0; i < 2; i++) {
          await h.jobs.createJob(bob.accountId, 'bob', {
            job_type: 'reboot',
            description: descriptions[(pages + i) % descriptions.length] ?? null,
            targets: { devices: [deviceId(1)] },
          });
        }
        const candidates = [...initial].filter((id) => !deleted.has(id));
        for (const id of [seen[Math.floor(seen.length / 2)], candidates[(pages * 37) % candidates.length]]) {
          if (id !== undefined && !deleted.has(id)) {
            deleted.add(id);
            await removeJob(id);
          }
        }
      }
      expect(pages).toBeGreaterThanOrEqual(24);
      expect(new Set(seen).size).toBe(seen.length);
      const seenSet = new Set(seen);
      for (const id of initial) {
        if (!deleted.has(id)) expect(seenSet.has(id), `job ${id} was not seen`).toBe(true);
      }
    },
    120_000,
  );
});
