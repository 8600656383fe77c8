import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { ServiceNode, Store, WakeUp } from '../../src/store/store.js';
import { newPostgresDatabase } from '../setup/databases.js';
import { setConnection } from '../setup/presence.js';
import { jobForAllDevices } from './new-job.js';

/**
 * Several nodes on one store (CONTRACT §8), on both engines: two stores opened on one database
 * act as two nodes. Claims only one node wins, taken over once expired; presence in the order the
 * messages were received, whichever node applies them; wake-ups.
 */

const folder = mkdtempSync(join(tmpdir(), 'fleetjobs-cluster-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
let files = 0;

/** Engine, a database for a test (opening stores on it), whether several processes may write at once. */
const engines: [string, () => Promise<() => Promise<Store>>, boolean][] = [
  [
    'SQLite',
    async () => {
      const path = join(folder, `cluster-${++files}.db`);
      return () => openSqliteStore(path);
    },
    false,
  ],
  [
    'PostgreSQL',
    async () => {
      const url = await newPostgresDatabase();
      return () => openPostgresStore(url);
    },
    true,
  ],
];

const T0 = Date.UTC(2026, 11, 2, 3, 0);
const TTL = 5_000;
const node = (id: string): ServiceNode => ({ id, broker: 'external', host: 'test-host', pid: 1 });
const claim = (id: string, now: number) => ({ node: id, now, expires: now + TTL });
const DEVICE = '00000000-00000000-00000000-0000000A';

describe.each(engines)('%s: several nodes on one store', (_name, database, concurrent) => {
  let a: Store;
  let b: Store;
  let jobId: number;

  beforeEach(async () => {
    const open = await database();
    a = await open();
    b = await open();
    const account = (await a.ensureAccount('acme', T0)).id;
    await a.createDevices(account, [{ id: DEVICE, token_hash: 'hash' }]);
    const job = await a.createJob(
      jobForAllDevices(account, T0, {
        offline_timeout: 600,
      }),
    );
    jobId = job.id;
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it('a new job is claimed by one node; another takes it over only once the claim expired', async () => {
    const first = await a.startNewJobs(claim('a', T0));
    const second = await b.startNewJobs(claim('b', T0));
    expect([first, second]).toEqual([[jobId], []]);
    const [owner, ownerStore, otherId, other] = ['a', a, 'b', b] as const;

    expect(await other.takeOverJobs(claim(otherId, T0 + TTL - 1), 10)).toEqual([]);
    // the heartbeat renews the claim: still not expired where it would have
    await ownerStore.heartbeat(node(owner), claim(owner, T0 + 3_000));
    expect(await other.takeOverJobs(claim(otherId, T0 + TTL + 1), 10)).toEqual([]);
    // the owner stops renewing (it died): the claim passes to the other node, once
    expect(await other.takeOverJobs(claim(otherId, T0 + 3_000 + TTL + 1), 10)).toEqual([jobId]);
    expect(await ownerStore.takeOverJobs(claim(owner, T0 + 3_000 + TTL + 2), 10)).toEqual([]);
    // released once fanned out: nobody takes it over any more
    await other.releaseJob(jobId, otherId);
    expect(await ownerStore.takeOverJobs(claim(owner, T0 + 60_000), 10)).toEqual([]);
  });

  it('two nodes taking over at once: each expired claim goes to exactly one', async () => {
    await a.startNewJobs(claim('dead', T0));
    // at once on PostgreSQL; one after the other on SQLite, whose writers are serial (and which
    // would block this one thread on the second connection)
    const takeOver = [
      () => a.takeOverJobs(claim('a', T0 + TTL + 1), 10),
      () => b.takeOverJobs(claim('b', T0 + TTL + 1), 10),
    ];
    const taken = concurrent
      ? await Promise.all(takeOver.map((run) => run()))
      : [await takeOver[0]?.(), await takeOver[1]?.()];
    expect(taken.flat()).toEqual([jobId]);
  });

  it('a node that leaves lets its claims expire at once and is no longer alive', async () => {
    await a.heartbeat(node('a'), claim('a', T0));
    await a.startNewJobs(claim('a', T0));
    expect((await b.liveNodes(T0 - TTL, 'b')).map((n) => n.id)).toEqual(['a']);
    await a.leave('a');
    expect(await b.liveNodes(T0 - TTL, 'b')).toEqual([]);
    expect(await b.takeOverJobs(claim('b', T0 + 1), 10)).toEqual([jobId]);
  });

  it('a node that died is buried once; the burier claims the unclaimed in-progress jobs', async () => {
    await a.heartbeat(node('dead'), claim('dead', T0));
    await a.startNewJobs(claim('a', T0));
    await a.releaseJob(jobId, 'a');
    await b.heartbeat(node('b'), claim('b', T0 + TTL));
    // not yet dead
    expect(await b.buryDeadNodes(T0 - 1, claim('b', T0 + TTL))).toEqual({ nodes: [], jobs: [] });
    expect(await b.buryDeadNodes(T0 + 1, claim('b', T0 + TTL))).toEqual({ nodes: ['dead'], jobs: [jobId] });
    expect(await a.buryDeadNodes(T0 + 1, claim('a', T0 + TTL))).toEqual({ nodes: [], jobs: [] });
    expect((await a.liveNodes(0, 'a')).map((n) => n.id)).toEqual(['b']);
  });

  it("a dead node's claims pass to the burier at once, first of every in-progress job to send again", async () => {
    const account = (await a.ensureAccount('acme', T0)).id;
    await a.heartbeat(node('dead'), claim('dead', T0));
    await a.startNewJobs(claim('c', T0));
    // c lives on (its heartbeat renews its claim); the dead node claimed a job after its last heartbeat
    await a.heartbeat(node('c'), claim('c', T0 + TTL));
    const later = await a.createJob(jobForAllDevices(account, T0 + 1_000, { offline_timeout: 600 }));
    await a.startNewJobs(claim('dead', T0 + 1_000));
    // every in-progress job (the dead node took device statuses of any job with it), its own first
    expect(await b.buryDeadNodes(T0 + 1, claim('b', T0 + 2_000))).toEqual({
      nodes: ['dead'],
      jobs: [later.id, jobId],
    });
    // its claim passed to b although it had not expired; c keeps its own
    expect(await a.takeOverJobs(claim('a', T0 + 1_000 + TTL + 1), 10)).toEqual([]);
    expect(await a.takeOverJobs(claim('a', T0 + 2_000 + TTL + 1), 10)).toEqual([later.id]);
  });

  it('presence follows the order messages were received in, whichever node applies them', async () => {
    const connection = async () =>
      (
        await a.listDevices({
          accountId: (await a.ensureAccount('acme', T0)).id,
          query: null,
          order: { field: 'id', direction: 'asc' },
          after: null,
          limit: 1,
        })
      )[0]?.connection_status;
    expect(await setConnection(a, DEVICE, 'connected', T0 + 20, DEVICE.toLowerCase())).toBe(true);
    // an offline received before that online, applied late on another node, changes nothing
    expect(await setConnection(b, DEVICE, 'disconnected', T0 + 10)).toBe(false);
    expect(await connection()).toBe('connected');
    expect(await setConnection(b, DEVICE, 'disconnected', T0 + 30)).toBe(true);
    // a late online never marks the offline device connected
    expect(await setConnection(a, DEVICE, 'connected', T0 + 25)).toBe(false);
    expect(await connection()).toBe('disconnected');
    // the spelling the device connected with is stored, for every node to publish on
    expect(await b.deviceTopicIds([DEVICE])).toEqual(new Map([[DEVICE, DEVICE.toLowerCase()]]));
    // a replayed (retained) online changes only what it contradicts
    expect(await setConnection(a, DEVICE, 'connected', T0 + 40, DEVICE, true)).toBe(true);
    expect(await setConnection(b, DEVICE, 'connected', T0 + 41, DEVICE, true)).toBe(false);
    expect(await setConnection(b, DEVICE, 'connected', T0 + 42, DEVICE)).toBe(true);
  });

  it('wakes every node up', async () => {
    const heard: WakeUp[] = [];
    // PostgreSQL: across connections; SQLite: within the process, its only writer
    const listener = concurrent ? b : a;
    const stop = await listener.listen((wakeUp) => heard.push(wakeUp));
    try {
      await a.notify('jobs');
      const until = Date.now() + 5_000;
      while (heard.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      expect(heard).toEqual(['jobs']);
    } finally {
      await stop();
    }
  });
});
