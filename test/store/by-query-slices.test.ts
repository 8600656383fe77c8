import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_CONTROLS } from '../../src/model/rollout.js';
import { parseQuery, type Query } from '../../src/query/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';

const JOBS = 2_500;
const DEVICE = '00000000-00000000-00000000-00000001';

const jobQuery = (text: string): Query => {
  const query = parseQuery(text, 'jobs');
  if (query === null) throw new Error('empty query');
  return query;
};

/** Starts `read` once the event loop has turned (so `running` is under way), then tells which settles first. */
async function readFirst(running: Promise<unknown>, read: () => Promise<unknown>): Promise<boolean> {
  await new Promise((resolve) => setImmediate(resolve));
  return (await first(read(), running)) === 'a';
}

/** Which of two promises settles first. */
async function first(a: Promise<unknown>, b: Promise<unknown>): Promise<'a' | 'b'> {
  const order: ('a' | 'b')[] = [];
  await Promise.all([a.then(() => order.push('a')), b.then(() => order.push('b'))]);
  return order[0] as 'a' | 'b';
}

describe('cancel and delete by query of many jobs (§13: bounded slices)', () => {
  let dir: string;
  let store: Store;
  let accountId: number;
  let clock = Date.UTC(2026, 10, 28, 17, 40);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetjobs-slices-'));
    store = await openSqliteStore(join(dir, 'fleetjobs.db'));
    accountId = (await store.ensureAccount('acme', clock)).id;
    await store.createDevices(accountId, [{ id: DEVICE, token_hash: 'hash' }]);
    for (let n = 0; n < JOBS; n++) {
      await store.createJob({
        accountId,
        username: n % 5 === 0 ? 'bob' : 'alice',
        job_type: 'reboot',
        description: null,
        targets: { devices: [DEVICE] },
        selection: { devices: [DEVICE], groups: [], tags: [], query: null, all: false },
        payload: null,
        timeout: 600,
        offline_timeout: 86_400,
        controls: NO_CONTROLS,
        rollout_state: 'running',
        now: ++clock,
      });
    }
  }, 120_000);
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a cancel by query lets other requests through while it runs, and counts every job once', async () => {
    // bob's jobs are canceled first: the big cancel skips them.
    const bob = await store.cancelJobsByQuery(accountId, jobQuery("username = 'bob'"), false, ++clock);
    expect(bob).toMatchObject({ count: JOBS / 5, skipped: 0 });

    const cancel = store.cancelJobsByQuery(accountId, jobQuery("job_type = 'reboot'"), false, ++clock);
    expect(await readFirst(cancel, () => store.getJob(accountId, 1))).toBe(true);
    const result = await cancel;
    expect(result.count).toBe(JOBS - JOBS / 5);
    expect(result.skipped).toBe(JOBS / 5);
    expect(result.notices).toEqual([]);
    const again = await store.cancelJobsByQuery(accountId, jobQuery("job_type = 'reboot'"), false, ++clock);
    expect(again).toMatchObject({ count: 0, skipped: JOBS });
  });

  it('a delete by query lets other requests through while it runs, and deletes every matching job', async () => {
    const remove = store.deleteJobsByQuery(accountId, jobQuery("job_type = 'reboot'"));
    expect(await readFirst(remove, () => store.getJob(accountId, JOBS))).toBe(true);
    expect(await remove).toEqual({ count: JOBS, skipped: 0 });
    expect(await store.getJob(accountId, 1)).toBeUndefined();
    expect(await store.getJob(accountId, JOBS)).toBeUndefined();
  });
});
