// §3 list envelope, size, cursor, orderby — on devices, jobs and job targets.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Auth, allPages, deviceId, q, type Server, startServer } from './harness.js';

let server: Server;
const users: Record<string, Auth> = {};

beforeAll(async () => {
  server = await startServer();
  const names = [
    'env',
    'size',
    'cursor',
    'order',
    'missing',
    'missing2',
    'codepoint',
    'jobs',
    'keyset',
    'targets',
  ];
  const made = await Promise.all(names.map((n) => server.user(`acct-${n}`, `list-${n}`)));
  names.forEach((n, i) => {
    users[n] = made[i] as Auth;
  });
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

function as(name: string): { auth: Auth } {
  return { auth: users[name] as Auth };
}

async function devices(user: string, list: Record<string, unknown>[]): Promise<string[]> {
  const r = await server.post('/ws/v1/devices/inventory', list, as(user));
  expect(r.status).toBe(201);
  return list.map((d) => d.id as string);
}

async function createJob(
  user: string,
  targets: unknown,
  extra: Record<string, unknown> = {},
): Promise<number> {
  const r = await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets, ...extra }, as(user));
  expect(r.status).toBe(201);
  return r.body.id;
}

describe('§3 list envelope', () => {
  it('count, size, cursor and next_uri only when more follow; next_uri usable as is', async () => {
    const ids = await devices(
      'env',
      [0, 1, 2, 3, 4].map(() => ({ id: deviceId('E0') })),
    );
    const full = await server.get('/ws/v1/devices/inventory', as('env'));
    expect(full.status).toBe(200);
    expect(full.body.count).toBe(5);
    expect(full.body.size).toBe(1000);
    expect(full.body).not.toHaveProperty('cursor');
    expect(full.body).not.toHaveProperty('next_uri');
    expect(full.body.list.map((d: { id: string }) => d.id)).toEqual([...ids].sort());

    const first = await server.get('/ws/v1/devices/inventory?size=2', as('env'));
    expect(first.body.count).toBe(2);
    expect(first.body.size).toBe(2);
    expect(typeof first.body.cursor).toBe('string');
    expect(first.body.next_uri).toMatch(/^\/ws\/v1\/devices\/inventory\?/);
    expect(first.body.next_uri).toContain('cursor=');

    const pages = await allPages(server, '/ws/v1/devices/inventory?size=2', as('env'));
    expect(pages.map((p) => p.count)).toEqual([2, 2, 1]);
    const last = pages[2];
    expect(last).not.toHaveProperty('cursor');
    expect(last).not.toHaveProperty('next_uri');
    expect(pages.flatMap((p) => p.list.map((d: { id: string }) => d.id))).toEqual([...ids].sort());

    // exactly size items: no next page announced
    const exact = await server.get('/ws/v1/devices/inventory?size=5', as('env'));
    expect(exact.body.count).toBe(5);
    expect(exact.body).not.toHaveProperty('next_uri');
  });

  it('next_uri carries query, orderby and size', async () => {
    await devices(
      'env',
      ['n1', 'n2', 'n3', 'n4', 'skip'].map((name, i) => ({ id: deviceId('E1'), name, signal_percent: i })),
    );
    const path = `/ws/v1/devices/inventory?size=1&query=${q("name startsWith 'n'")}&orderby=${q('signal_percent asc')}`;
    const pages = await allPages(server, path, as('env'));
    expect(pages).toHaveLength(4);
    for (const p of pages) expect(p.size).toBe(1);
    expect(pages.map((p) => p.list[0].name)).toEqual(['n1', 'n2', 'n3', 'n4']);
  });
});

describe('§3 next_uri encoding', () => {
  it('a query with &, +, #, %, spaces and non-ASCII survives next_uri', async () => {
    const name = "a&b+c #d%20é'x";
    const quoted = name.replace(/'/g, "''");
    await devices(
      'env',
      [0, 1, 2].map((i) => ({ id: deviceId('E9'), name, signal_percent: i })),
    );
    const pages = await allPages(
      server,
      `/ws/v1/devices/inventory?size=1&orderby=${q('signal_percent asc')}&query=${q(`name = '${quoted}'`)}`,
      as('env'),
    );
    expect(pages.map((p) => p.list[0]?.signal_percent)).toEqual([0, 1, 2]);
  });
});

describe('§3 size', () => {
  it('0, negative, non-integer are 400; above 1000 is clamped', async () => {
    await devices('size', [{ id: deviceId('5A') }]);
    for (const bad of ['0', '-1', 'abc', '1.5', '']) {
      const r = await server.get(`/ws/v1/devices/inventory?size=${bad}`, as('size'));
      expect(r.status, `size=${bad}`).toBe(400);
      expect(r.body.error_status).toBe(400);
      expect(r.body.error_message).toMatch(/size/i);
      const j = await server.get(`/ws/v1/jobs/inventory?size=${bad}`, as('size'));
      expect(j.status, `jobs size=${bad}`).toBe(400);
    }
    const clamped = await server.get('/ws/v1/devices/inventory?size=5000', as('size'));
    expect(clamped.status).toBe(200);
    expect(clamped.body.size).toBe(1000);
    expect((await server.get('/ws/v1/jobs/inventory?size=1001', as('size'))).body.size).toBe(1000);
    expect((await server.get('/ws/v1/devices/inventory?size=1', as('size'))).body.size).toBe(1);
    expect((await server.get('/ws/v1/devices/inventory?size=1000', as('size'))).body.size).toBe(1000);
  });
});

describe('§3 cursor', () => {
  it('is bound to its query and orderby; malformed or forged is 400', async () => {
    await devices(
      'cursor',
      [0, 1, 2, 3].map((i) => ({ id: deviceId('C0'), name: `c${i}`, signal_percent: i })),
    );
    const query = q("name startsWith 'c'");
    const first = await server.get(
      `/ws/v1/devices/inventory?size=1&query=${query}&orderby=name`,
      as('cursor'),
    );
    const cursor = encodeURIComponent(first.body.cursor);
    const same = await server.get(
      `/ws/v1/devices/inventory?size=1&query=${query}&orderby=name&cursor=${cursor}`,
      as('cursor'),
    );
    expect(same.status).toBe(200);
    expect(same.body.list[0].name).toBe('c2');

    const otherQuery = await server.get(
      `/ws/v1/devices/inventory?size=1&query=${q("name startsWith 'c1'")}&orderby=name&cursor=${cursor}`,
      as('cursor'),
    );
    expect(otherQuery.status).toBe(400);
    const noQuery = await server.get(
      `/ws/v1/devices/inventory?size=1&orderby=name&cursor=${cursor}`,
      as('cursor'),
    );
    expect(noQuery.status).toBe(400);
    const otherOrder = await server.get(
      `/ws/v1/devices/inventory?size=1&query=${query}&orderby=${q('name asc')}&cursor=${cursor}`,
      as('cursor'),
    );
    expect(otherOrder.status).toBe(400);
    const noOrder = await server.get(
      `/ws/v1/devices/inventory?size=1&query=${query}&cursor=${cursor}`,
      as('cursor'),
    );
    expect(noOrder.status).toBe(400);

    for (const forged of ['garbage', 'eyJ4IjoxfQ', '%00%01', 'AAAAAAAAAAAAAAAA']) {
      const r = await server.get(`/ws/v1/devices/inventory?size=1&cursor=${forged}`, as('cursor'));
      expect(r.status, forged).toBe(400);
      expect(r.body.error_status).toBe(400);
      expect(r.body.error_message).toMatch(/cursor/i);
      const j = await server.get(`/ws/v1/jobs/inventory?size=1&cursor=${forged}`, as('cursor'));
      expect(j.status, `jobs ${forged}`).toBe(400);
    }
  });

  it('a device-list cursor is not a jobs cursor', async () => {
    await devices('cursor', [{ id: deviceId('C1') }, { id: deviceId('C1') }]);
    const d = await server.get('/ws/v1/devices/inventory?size=1', as('cursor'));
    const r = await server.get(
      `/ws/v1/jobs/inventory?size=1&cursor=${encodeURIComponent(d.body.cursor)}`,
      as('cursor'),
    );
    expect(r.status).toBe(400);
  });
});

describe('§3 keyset paging under changes', () => {
  it('every item present throughout is returned exactly once while items are added and deleted', async () => {
    const ids = await devices(
      'keyset',
      Array.from({ length: 10 }, () => ({ id: deviceId('BA') })),
    );
    const sorted = [...ids].sort();
    const seen: string[] = [];
    let r = await server.get('/ws/v1/devices/inventory?size=3', as('keyset'));
    seen.push(...r.body.list.map((d: { id: string }) => d.id));
    // delete one already seen and one not yet seen; add new ones before and after the cursor
    const deletedSeen = sorted[2] as string; // the last item of page 1: the cursor's anchor
    const deletedUnseen = sorted[7] as string;
    expect((await server.del(`/ws/v1/devices/inventory/${deletedSeen}`, as('keyset'))).status).toBeLessThan(
      300,
    );
    expect((await server.del(`/ws/v1/devices/inventory/${deletedUnseen}`, as('keyset'))).status).toBeLessThan(
      300,
    );
    await devices('keyset', [{ id: `00000000-00000000-00000000-${'0'.repeat(8)}` }, { id: deviceId('B9') }]);
    while (r.body.next_uri) {
      r = await server.get(r.body.next_uri, as('keyset'));
      expect(r.status).toBe(200);
      seen.push(...r.body.list.map((d: { id: string }) => d.id));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of sorted) if (id !== deletedUnseen) expect(seen).toContain(id);
    expect(seen).not.toContain(deletedUnseen);
  });
});

describe('§3 orderby', () => {
  it('devices default to id asc; a field alone is desc; asc/desc; ties on id in the same direction', async () => {
    const ids = await devices(
      'order',
      [30, 5, 100, 5, 30].map((s, i) => ({ id: deviceId('0D'), name: `o${i}`, signal_percent: s })),
    );
    const get = async (orderby?: string) => {
      const r = await server.get(
        `/ws/v1/devices/inventory${orderby === undefined ? '' : `?orderby=${q(orderby)}`}`,
        as('order'),
      );
      expect(r.status, orderby).toBe(200);
      return r.body.list.map((d: { id: string }) => d.id);
    };
    const [a, b, c, d, e] = ids as [string, string, string, string, string];
    expect(await get()).toEqual([a, b, c, d, e]);
    expect(await get('id')).toEqual([e, d, c, b, a]);
    expect(await get('id asc')).toEqual([a, b, c, d, e]);
    // numbers numerically (5 < 30 < 100), ties on id in the same direction
    expect(await get('signal_percent asc')).toEqual([b, d, a, e, c]);
    expect(await get('signal_percent')).toEqual([c, e, a, d, b]);
    expect(await get('signal_percent desc')).toEqual([c, e, a, d, b]);
  });

  it('an unknown field or direction is 400', async () => {
    for (const bad of ['colour', 'name sideways', 'name asc desc', '']) {
      const r = await server.get(`/ws/v1/devices/inventory?orderby=${q(bad)}`, as('order'));
      if (bad === '') continue; // an empty orderby is not specified
      expect(r.status, bad).toBe(400);
      expect(r.body.error_status).toBe(400);
      expect(r.body.error_message).toMatch(/orderby/i);
    }
    expect((await server.get(`/ws/v1/jobs/inventory?orderby=${q('colour asc')}`, as('order'))).status).toBe(
      400,
    );
  });

  it('paging through missing values stays exact while items are added and deleted', async () => {
    const ids = await devices('missing2', [
      { id: deviceId('AE') },
      { id: deviceId('AE'), name: 'k', signal_strength: 1 },
      { id: deviceId('AE') },
      { id: deviceId('AE'), name: 'k', signal_strength: 1 },
      { id: deviceId('AE'), signal_strength: 2 },
    ]);
    const path = `/ws/v1/devices/inventory?size=2&orderby=${q('signal_strength asc')}&query=${q(`id startsWith '00000000-00000000-AE'`)}`;
    let r = await server.get(path, as('missing2'));
    const seen: string[] = r.body.list.map((x: { id: string }) => x.id);
    // delete the cursor's anchor, add a missing-valued item before it and a valued one after it
    await server.del(`/ws/v1/devices/inventory/${seen[1]}`, as('missing2'));
    const added = await devices('missing2', [
      { id: deviceId('AE') },
      { id: deviceId('AE'), signal_strength: 1 },
    ]);
    while (r.body.next_uri) {
      r = await server.get(r.body.next_uri, as('missing2'));
      seen.push(...r.body.list.map((x: { id: string }) => x.id));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of ids) if (id !== seen[1]) expect(seen).toContain(id);
    expect(seen).toContain(added[1]);
  });

  it('a missing value sorts first in asc and last in desc', async () => {
    const ids = await devices('missing', [
      { id: deviceId('AD'), signal_percent: 50, name: 'm' },
      { id: deviceId('AD') },
      { id: deviceId('AD'), signal_percent: 10, name: 'a' },
      { id: deviceId('AD') },
    ]);
    const [a, b, c, d] = ids as [string, string, string, string];
    const get = async (orderby: string) =>
      (await server.get(`/ws/v1/devices/inventory?orderby=${q(orderby)}`, as('missing'))).body.list.map(
        (x: { id: string }) => x.id,
      );
    expect(await get('signal_percent asc')).toEqual([b, d, c, a]);
    expect(await get('signal_percent desc')).toEqual([a, c, d, b]);
    expect(await get('name asc')).toEqual([b, d, c, a]);
    expect(await get('name desc')).toEqual([a, c, d, b]);
    // paging through missing values returns each once
    const pages = await allPages(
      server,
      `/ws/v1/devices/inventory?size=1&orderby=${q('signal_percent asc')}`,
      as('missing'),
    );
    expect(pages.flatMap((p) => p.list.map((x: { id: string }) => x.id))).toEqual([b, d, c, a]);
  });

  it('text sorts by Unicode code point, case-sensitive', async () => {
    // U+FF5A sorts before U+1F600 by code point (UTF-8 bytes), after it by UTF-16 code units
    const names = ['b', 'B', 'a', 'Z', 'é', 'e', '_', 'ä', '\u{1F600}', '\uFF5A', '\uFB01'];
    await devices(
      'codepoint',
      names.map((name) => ({ id: deviceId('CD'), name })),
    );
    const r = await server.get(`/ws/v1/devices/inventory?orderby=${q('name asc')}`, as('codepoint'));
    const byCodePoint = (x: string, y: string): number => {
      const a = [...x].map((c) => c.codePointAt(0) as number);
      const b = [...y].map((c) => c.codePointAt(0) as number);
      for (let i = 0; i < Math.min(a.length, b.length); i += 1)
        if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
      return a.length - b.length;
    };
    const expected = [...names].sort(byCodePoint);
    expect(expected.indexOf('\uFF5A')).toBeLessThan(expected.indexOf('\u{1F600}'));
    expect(r.body.list.map((d: { name: string }) => d.name)).toEqual(expected);
    const desc = await server.get(`/ws/v1/devices/inventory?orderby=${q('name desc')}`, as('codepoint'));
    expect(desc.body.list.map((d: { name: string }) => d.name)).toEqual([...expected].reverse());
  });

  it('jobs default to id desc; ids increase in submit order; orderby on job fields', async () => {
    const [dev] = await devices('jobs', [{ id: deviceId('DD') }]);
    const made: number[] = [];
    for (const description of ['b', 'a', 'c'])
      made.push(await createJob('jobs', { devices: [dev] }, { description }));
    expect(made[0]).toBeLessThan(made[1] as number);
    expect(made[1]).toBeLessThan(made[2] as number);
    const ids = async (path: string) =>
      (await server.get(path, as('jobs'))).body.list.map((j: { id: number }) => j.id);
    expect(await ids('/ws/v1/jobs/inventory')).toEqual([...made].reverse());
    expect(await ids(`/ws/v1/jobs/inventory?orderby=${q('id asc')}`)).toEqual(made);
    expect(await ids(`/ws/v1/jobs/inventory?orderby=${q('description asc')}`)).toEqual([
      made[1],
      made[0],
      made[2],
    ]);
    expect(await ids('/ws/v1/jobs/inventory?orderby=description')).toEqual([made[2], made[0], made[1]]);
    // ties (same job_type) break on id in the same direction
    expect(await ids(`/ws/v1/jobs/inventory?orderby=${q('job_type asc')}`)).toEqual(made);
    expect(await ids(`/ws/v1/jobs/inventory?orderby=${q('job_type desc')}`)).toEqual([...made].reverse());
    const pages = await allPages(server, '/ws/v1/jobs/inventory?size=1', as('jobs'));
    expect(pages.flatMap((p) => p.list.map((j: { id: number }) => j.id))).toEqual([...made].reverse());
  });

  it('jobs and targets: a missing value first in asc, last in desc', async () => {
    const ids = await devices('jobs', [
      { id: deviceId('DE') },
      { id: deviceId('DE') },
      { id: deviceId('DE') },
    ]);
    const open = await createJob('jobs', { devices: ids }, { description: 'zz-open' });
    const done = await createJob('jobs', { devices: [ids[0]] }, { description: 'zz-done' });
    const nodesc = await createJob('jobs', { devices: [ids[0]] });
    expect((await server.put(`/ws/v1/jobs/cancel/${done}`, undefined, as('jobs'))).status).toBe(200);
    const order = async (orderby: string) =>
      (
        await server.get(
          `/ws/v1/jobs/inventory?orderby=${q(orderby)}&query=${q(`id >= ${open}`)}`,
          as('jobs'),
        )
      ).body.list.map((j: { id: number }) => j.id);
    expect(await order('job_completion_time asc')).toEqual([open, nodesc, done]);
    expect(await order('job_completion_time desc')).toEqual([done, nodesc, open]);
    expect(await order('description asc')).toEqual([nodesc, done, open]);
    expect(await order('description desc')).toEqual([open, done, nodesc]);

    // end one of the open job's targets (failed: device deleted); the others have no end_time
    await server.del(`/ws/v1/devices/inventory/${ids[1]}`, as('jobs'));
    const targets = async (orderby: string) =>
      (await server.get(`/ws/v1/jobs/${open}/targets?orderby=${q(orderby)}`, as('jobs'))).body.list.map(
        (t: { device_id: string }) => t.device_id,
      );
    const [a, b, c] = ids as [string, string, string];
    expect(await targets('end_time asc')).toEqual([a, c, b]);
    expect(await targets('end_time desc')).toEqual([b, c, a]);
  });

  it('job targets default to device_id asc and page with next_uri', async () => {
    const ids = await devices(
      'targets',
      ['t3', 't1', 't2'].map((name) => ({ id: deviceId('FD'), name })),
    );
    const jobId = await createJob('targets', { devices: [...ids].reverse() });
    const r = await server.get(`/ws/v1/jobs/${jobId}/targets`, as('targets'));
    expect(r.status).toBe(200);
    expect(r.body.count).toBe(3);
    expect(r.body.size).toBe(1000);
    expect(r.body.list.map((t: { device_id: string }) => t.device_id)).toEqual([...ids].sort());
    const desc = await server.get(`/ws/v1/jobs/${jobId}/targets?orderby=device_id`, as('targets'));
    expect(desc.body.list.map((t: { device_id: string }) => t.device_id)).toEqual([...ids].sort().reverse());
    const pages = await allPages(server, `/ws/v1/jobs/${jobId}/targets?size=2`, as('targets'));
    expect(pages.map((p) => p.count)).toEqual([2, 1]);
    expect(pages[0].next_uri).toMatch(new RegExp(`^/ws/v1/jobs/${jobId}/targets\\?`));
    const byName = await server.get(`/ws/v1/jobs/${jobId}/targets?query=${q("name = 't1'")}`, as('targets'));
    expect(byName.body.list.map((t: { device_id: string }) => t.device_id)).toEqual([ids[1]]);
    // ties (all queued) break on device_id in the direction of the field
    const tieAsc = await server.get(`/ws/v1/jobs/${jobId}/targets?orderby=${q('status asc')}`, as('targets'));
    expect(tieAsc.body.list.map((t: { device_id: string }) => t.device_id)).toEqual([...ids].sort());
    const tieDesc = await server.get(`/ws/v1/jobs/${jobId}/targets?orderby=status`, as('targets'));
    expect(tieDesc.body.list.map((t: { device_id: string }) => t.device_id)).toEqual(
      [...ids].sort().reverse(),
    );
    expect((await server.get(`/ws/v1/jobs/${jobId}/targets?size=5000`, as('targets'))).body.size).toBe(1000);
    const firstTarget = await server.get(`/ws/v1/jobs/${jobId}/targets?size=1`, as('targets'));
    const tc = encodeURIComponent(firstTarget.body.cursor);
    const withOtherQuery = await server.get(
      `/ws/v1/jobs/${jobId}/targets?size=1&query=${q("status = 'queued'")}&cursor=${tc}`,
      as('targets'),
    );
    expect(withOtherQuery.status).toBe(400);
    expect(
      (await server.get(`/ws/v1/jobs/${jobId}/targets?size=1&cursor=garbage`, as('targets'))).status,
    ).toBe(400);
    const bad = await server.get(`/ws/v1/jobs/${jobId}/targets?size=0`, as('targets'));
    expect(bad.status).toBe(400);
  });
});
