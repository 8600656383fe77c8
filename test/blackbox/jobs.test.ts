// §5 jobs: create, detail, targets, cancel, delete, by-query, aliases; §6 job queries.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Auth,
  deviceId,
  expectError,
  ISO_MS,
  LISTED_JOB_FIELDS,
  q,
  type Reply,
  type Server,
  startServer,
} from './harness.js';

let server: Server;
let alice: Auth;
let other: Auth;

beforeAll(async () => {
  server = await startServer();
  [alice, other] = await Promise.all([server.user('jobs-a', 'jalice'), server.user('jobs-b', 'jother')]);
  server.defaultAuth = alice;
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function devices(list: Record<string, unknown>[]): Promise<string[]> {
  const r = await server.post('/ws/v1/devices/inventory', list);
  expect(r.status, r.text).toBe(201);
  return list.map((d) => d.id as string);
}

async function createJob(targets: unknown, extra: Record<string, unknown> = {}): Promise<Reply> {
  const r = await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets, ...extra });
  expect(r.status, r.text).toBe(201);
  return r;
}

async function newJob(): Promise<number> {
  const [id] = await devices([{ id: deviceId('1') }]);
  return (await createJob({ devices: [id] })).body.id;
}

async function targetIds(jobId: number): Promise<string[]> {
  const r = await server.get(`/ws/v1/jobs/${jobId}/targets`);
  expect(r.status).toBe(200);
  return r.body.list.map((t: { device_id: string }) => t.device_id).sort();
}

// biome-ignore lint/suspicious/noExplicitAny: JSON job
function expectCountsAddUp(job: any): void {
  expect(job.progress_success + job.progress_failures + job.progress_canceled + job.progress_pending).toBe(
    job.target_count,
  );
}

describe('§5 summary', () => {
  it('GET /ws/v1/jobs', async () => {
    const r = await server.get('/ws/v1/jobs');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      inventory_uri: '/ws/v1/jobs/inventory',
      inventory_xml_uri: '/ws/v1/jobs/inventory.xml',
      bulk_uri: '/ws/v1/jobs/bulk',
      cancel_uri: '/ws/v1/jobs/inventory/cancel',
    });
  });
});

describe('§5 create', () => {
  it('201, Location, the job object; starts new with queued targets; detail adds payload/timeouts/targets', async () => {
    const ids = await devices([{ id: deviceId('2') }, { id: deviceId('2') }]);
    const payload = { text: 'hello', nested: { list: [1, 2, 3], flag: true, none: null } };
    const r = await createJob({ devices: ids }, { job_type: 'send_message', description: 'say hi', payload });
    const job = r.body;
    expect(r.headers.get('location')).toBe(`/ws/v1/jobs/${job.id}`);
    for (const f of LISTED_JOB_FIELDS) expect(job, f).toHaveProperty(f);
    expect(Number.isInteger(job.id)).toBe(true);
    expect(Number.isInteger(job.customer_id)).toBe(true);
    expect(job.username).toBe('jalice');
    expect(job.job_type).toBe('send_message');
    expect(job.job_status).toBe('new');
    expect(job.description).toBe('say hi');
    expect(job.job_submit_time).toMatch(ISO_MS);
    expect(Math.abs(Date.parse(job.job_submit_time) - Date.now())).toBeLessThan(60_000);
    expect(job.job_completion_time).toBeNull();
    expect(job.target_count).toBe(2);
    expect(job.progress_pending).toBe(2);
    expect(job.progress_success).toBe(0);
    expect(job.progress_failures).toBe(0);
    expect(job.progress_canceled).toBe(0);

    for (const path of [`/ws/v1/jobs/${job.id}`, `/ws/v1/jobs/inventory/${job.id}`]) {
      const d = await server.get(path);
      expect(d.status).toBe(200);
      expect(['new', 'in_progress']).toContain(d.body.job_status);
      expect(d.body.payload).toEqual(payload);
      expect(d.body.timeout).toBe(600);
      expect(d.body.offline_timeout).toBe(86400);
      expect(d.body.targets).toEqual({ devices: ids });
      expect(d.body.id).toBe(job.id);
      expectCountsAddUp(d.body);
    }

    // the list carries the 13 fields and the rollout's two (no payload/targets)
    const list = await server.get(`/ws/v1/jobs/inventory?query=${q(`id = ${job.id}`)}`);
    expect(list.body.count).toBe(1);
    expect(Object.keys(list.body.list[0]).sort()).toEqual([...LISTED_JOB_FIELDS].sort());

    const targets = await server.get(`/ws/v1/jobs/${job.id}/targets`);
    expect(targets.body.count).toBe(2);
    for (const t of targets.body.list) {
      expect(t.job_id).toBe(job.id);
      expect(ids).toContain(t.device_id);
      expect(t.status).toBe('queued');
      expect(t.queued_time).toMatch(ISO_MS);
      expect(t.end_time).toBeNull();
    }
  });

  it('timeout and offline_timeout are kept; every job_type is accepted', async () => {
    const [id] = await devices([{ id: deviceId('3') }]);
    const r = await createJob({ devices: [id] }, { timeout: 30, offline_timeout: 120 });
    const d = await server.get(`/ws/v1/jobs/${r.body.id}`);
    expect(d.body.timeout).toBe(30);
    expect(d.body.offline_timeout).toBe(120);
    for (const t of [
      'send_message',
      'update_firmware',
      'reboot',
      'file_system',
      'data_service',
      'disconnect',
      'command',
    ]) {
      const j = await createJob({ devices: [id] }, { job_type: t });
      expect(j.body.job_type).toBe(t);
    }
  });

  it('targets by group include subgroups, whole segments only (/NorthWest not /NorthWestern)', async () => {
    const ids = await devices([
      { id: deviceId('4'), group: '/NorthWest' },
      { id: deviceId('4'), group: '/NorthWest/Seattle' },
      { id: deviceId('4'), group: '/NorthWest/Seattle/Pier' },
      { id: deviceId('4'), group: '/NorthWestern' },
      { id: deviceId('4'), group: '/Other/NorthWest' },
    ]);
    const r = await createJob({ groups: ['/NorthWest'] });
    expect(r.body.target_count).toBe(3);
    expect(await targetIds(r.body.id)).toEqual(ids.slice(0, 3).sort());
    const sub = await createJob({ groups: ['/NorthWest/Seattle'] });
    expect(await targetIds(sub.body.id)).toEqual(ids.slice(1, 3).sort());
  });

  it('targets by tags, by query, all, and their union without duplicates', async () => {
    const ids = await devices([
      { id: deviceId('5'), tags: ['zz-sensor', 'zz-important'], name: 'zz1' },
      { id: deviceId('5'), tags: ['zz-sensor'], name: 'zz2' },
      { id: deviceId('5'), tags: ['zz-other'], name: 'zz3', signal_percent: 5 },
      { id: deviceId('5'), name: 'zz4' },
    ]);
    const byTag = await createJob({ tags: ['zz-sensor'] });
    expect(await targetIds(byTag.body.id)).toEqual(ids.slice(0, 2).sort());
    const byQuery = await createJob({ query: "name startsWith 'zz' and signal_percent < 10" });
    expect(await targetIds(byQuery.body.id)).toEqual([ids[2]]);
    const selector = {
      tags: ['zz-sensor', 'zz-other'],
      devices: [ids[0], ids[3], ids[3]],
      query: "name = 'zz2'",
    };
    const union = await createJob(selector);
    expect((await server.get(`/ws/v1/jobs/${union.body.id}`)).body.targets).toEqual(selector);
    expect(union.body.target_count).toBe(4);
    expect(await targetIds(union.body.id)).toEqual([...ids].sort());
    const all = await createJob({ all: true });
    const everyDevice = await server.get('/ws/v1/devices/inventory');
    expect(all.body.target_count).toBe(everyDevice.body.count);
    expect(all.body.progress_pending).toBe(everyDevice.body.count);
  });

  it('targets are fixed at creation', async () => {
    const [a] = await devices([{ id: deviceId('6'), group: '/Fixed' }]);
    const job = await createJob({ groups: ['/Fixed'] });
    await devices([{ id: deviceId('6'), group: '/Fixed' }]);
    expect(await targetIds(job.body.id)).toEqual([a]);
    expect((await server.get(`/ws/v1/jobs/${job.body.id}`)).body.target_count).toBe(1);
  });

  it('unknown device, no target at all, bad selector: 400', async () => {
    const [id] = await devices([{ id: deviceId('7') }]);
    expectError(
      await server.post('/ws/v1/jobs/inventory', {
        job_type: 'reboot',
        targets: { devices: [id, deviceId('7')] },
      }),
      400,
    );
    expectError(await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets: {} }), 400);
    expectError(
      await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { devices: [] } }),
      400,
    );
    expectError(await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot' }), 400);
    expectError(
      await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { groups: ['/Nowhere'] } }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', {
        job_type: 'reboot',
        targets: { query: "name = 'no-such'" },
      }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', { job_type: 'reboot', targets: { query: 'name equals' } }),
      400,
    );
    expectError(await server.post('/ws/v1/jobs/inventory', { targets: { devices: [id] } }), 400);
  });

  it('payload: at most 64 KiB, else 400', async () => {
    const [id] = await devices([{ id: deviceId('8') }]);
    const ok = await createJob({ devices: [id] }, { payload: 'x'.repeat(60 * 1024) });
    expect((await server.get(`/ws/v1/jobs/${ok.body.id}`)).body.payload).toHaveLength(60 * 1024);
    expectError(
      await server.post('/ws/v1/jobs/inventory', {
        job_type: 'send_message',
        targets: { devices: [id] },
        payload: 'x'.repeat(65 * 1024),
      }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', {
        job_type: 'send_message',
        targets: { devices: [id] },
        payload: { blob: Array.from({ length: 9000 }, (_, i) => `item-${i}`) },
      }),
      400,
    );
  });

  it('an unknown job id is 404; a non-numeric one is 400 or 404', async () => {
    expectError(await server.get('/ws/v1/jobs/987654'), 404);
    expectError(await server.get('/ws/v1/jobs/inventory/987654'), 404);
    expectError(await server.get('/ws/v1/jobs/987654/targets'), 404);
    expect([400, 404]).toContain((await server.get('/ws/v1/jobs/abc')).status);
  });
});

describe('§5 cancel by id', () => {
  it('PUT /ws/v1/jobs/cancel/{id}: 200 {count, list}; job canceled at once, queued targets canceled; again 409', async () => {
    const ids = await devices([{ id: deviceId('9') }, { id: deviceId('9') }]);
    const job = (await createJob({ devices: ids })).body;
    const r = await server.put(`/ws/v1/jobs/cancel/${job.id}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.count).toBe(1);
    expect(r.body.list).toHaveLength(1);
    const after = r.body.list[0];
    expect(after.id).toBe(job.id);
    expect(after.job_status).toBe('canceled');
    expect(after.progress_canceled).toBe(2);
    expect(after.progress_pending).toBe(0);
    expect(after.job_completion_time).toMatch(ISO_MS);
    expectCountsAddUp(after);
    expect(r.body).not.toHaveProperty('errors');

    const targets = await server.get(`/ws/v1/jobs/${job.id}/targets`);
    for (const t of targets.body.list) {
      expect(t.status).toBe('canceled');
      expect(t.end_time).toMatch(ISO_MS);
    }
    const canceledTargets = await server.get(
      `/ws/v1/jobs/${job.id}/targets?query=${q("status = 'canceled'")}`,
    );
    expect(canceledTargets.body.count).toBe(2);

    const again = await server.put(`/ws/v1/jobs/cancel/${job.id}`);
    expectError(again, 409);
    const force = await server.put(`/ws/v1/jobs/cancel/${job.id}?force=true`);
    expectError(force, 409); // canceled, no in_progress target left: nothing to force
    const still = await server.get(`/ws/v1/jobs/${job.id}`);
    expect(still.body.job_completion_time).toBe(after.job_completion_time);
  });

  it('the reference alias /ws/v1/jobs/cancel{id} (no slash) works', async () => {
    const id = await newJob();
    const r = await server.put(`/ws/v1/jobs/cancel${id}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.list[0].job_status).toBe('canceled');
    expectError(await server.put(`/ws/v1/jobs/cancel${id}`), 409);
  });

  it('?force=true on a new job cancels it', async () => {
    const id = await newJob();
    const r = await server.put(`/ws/v1/jobs/cancel/${id}?force=true`);
    expect(r.status).toBe(200);
    expect(r.body.list[0].job_status).toBe('canceled');
  });

  it('several ids: partial errors in errors[]; all the same failure: that status with one error body', async () => {
    const a = await newJob();
    const b = await newJob();
    const c = await newJob();
    expect((await server.put(`/ws/v1/jobs/cancel/${b}`)).status).toBe(200);
    const missing = 999_001;
    const r = await server.put(`/ws/v1/jobs/cancel/${a},${b},${c},${missing}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.count).toBe(2);
    expect(r.body.list.map((j: { id: number }) => j.id).sort()).toEqual([a, c].sort());
    for (const j of r.body.list) expect(j.job_status).toBe('canceled');
    const errors = [...r.body.errors].sort((x: { id: number }, y: { id: number }) => x.id - y.id);
    expect(errors).toEqual([
      { id: b, error_status: 409, error_message: expect.any(String) },
      { id: missing, error_status: 404, error_message: expect.any(String) },
    ]);

    // all already canceled: 409 naming the ids
    const all409 = await server.put(`/ws/v1/jobs/cancel/${a},${b}`);
    expectError(all409, 409);
    expect(all409.body.error_message).toContain(String(a));
    expect(all409.body.error_message).toContain(String(b));
    // all unknown: 404
    const all404 = await server.put(`/ws/v1/jobs/cancel/${missing},${missing + 1}`);
    expectError(all404, 404);
    expect(all404.body.error_message).toContain(String(missing));
    expect(all404.body.error_message).toContain(String(missing + 1));
    // one unknown: 404
    expectError(await server.put(`/ws/v1/jobs/cancel/${missing}`), 404);
    // mixed failures, none changed: 200 with errors
    const mixed = await server.put(`/ws/v1/jobs/cancel${a},${missing}`);
    expect(mixed.status).toBe(200);
    expect(mixed.body.count).toBe(0);
    expect(mixed.body.list).toEqual([]);
    expect(mixed.body.errors).toHaveLength(2);
  });

  it('a job of another account is 404 in a list of ids', async () => {
    const mine = await newJob();
    const theirs = await server.put(`/ws/v1/jobs/cancel/${mine}`, undefined, { auth: other });
    expectError(theirs, 404);
    expect(['new', 'in_progress']).toContain((await server.get(`/ws/v1/jobs/${mine}`)).body.job_status);
  });
});

describe('§5 delete by id', () => {
  it('an unfinished job is 409 "cancel it first"; a finished one is deleted with its targets', async () => {
    const id = await newJob();
    const r = await server.del(`/ws/v1/jobs/inventory/${id}`);
    expectError(r, 409);
    expect(r.body.error_message.toLowerCase()).toContain('cancel it first');
    expect((await server.get(`/ws/v1/jobs/${id}`)).status).toBe(200);

    expect((await server.put(`/ws/v1/jobs/cancel/${id}`)).status).toBe(200);
    const d = await server.del(`/ws/v1/jobs/inventory/${id}`);
    expect(d.status, d.text).toBe(200);
    expect(d.body).toEqual({ count: 1, list: [id] });
    expectError(await server.get(`/ws/v1/jobs/${id}`), 404);
    expectError(await server.get(`/ws/v1/jobs/${id}/targets`), 404);
    expectError(await server.del(`/ws/v1/jobs/inventory/${id}`), 404);
  });

  it('several ids with partial errors; all the same failure: that status', async () => {
    const a = await newJob();
    const b = await newJob();
    const c = await newJob();
    await server.put(`/ws/v1/jobs/cancel/${a},${c}`);
    const missing = 999_002;
    const r = await server.del(`/ws/v1/jobs/inventory/${a},${b},${c},${missing}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body.count).toBe(2);
    expect([...r.body.list].sort()).toEqual([a, c].sort());
    const errors = [...r.body.errors].sort((x: { id: number }, y: { id: number }) => x.id - y.id);
    expect(errors).toEqual([
      { id: b, error_status: 409, error_message: expect.any(String) },
      { id: missing, error_status: 404, error_message: expect.any(String) },
    ]);
    expectError(await server.del(`/ws/v1/jobs/inventory/${a},${c}`), 404);
    const d = await newJob();
    const both409 = await server.del(`/ws/v1/jobs/inventory/${b},${d}`);
    expectError(both409, 409);
    expect(both409.body.error_message).toContain(String(b));
    expect(both409.body.error_message).toContain(String(d));
  });
});

describe('§5 by query', () => {
  it('PUT /ws/v1/jobs/inventory/cancel?query=: {count, skipped}; empty or absent query 400', async () => {
    const [dev] = await devices([{ id: deviceId('A') }]);
    const made = [];
    for (let i = 0; i < 3; i += 1)
      made.push((await createJob({ devices: [dev] }, { description: 'bq-cancel' })).body.id);
    await server.put(`/ws/v1/jobs/cancel/${made[0]}`);
    const query = q("description = 'bq-cancel'");
    const r = await server.put(`/ws/v1/jobs/inventory/cancel?query=${query}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ count: 2, skipped: 1 });
    for (const id of made) expect((await server.get(`/ws/v1/jobs/${id}`)).body.job_status).toBe('canceled');
    const again = await server.put(`/ws/v1/jobs/inventory/cancel?query=${query}`);
    expect(again.body).toEqual({ count: 0, skipped: 3 });

    expectError(await server.put('/ws/v1/jobs/inventory/cancel'), 400);
    expectError(await server.put('/ws/v1/jobs/inventory/cancel?query='), 400);
    expectError(await server.put(`/ws/v1/jobs/inventory/cancel?query=${q('   ')}`), 400);
    expectError(await server.put(`/ws/v1/jobs/inventory/cancel?query=${q('id >')}`), 400);
  });

  it('DELETE /ws/v1/jobs/cancel?query= and DELETE /ws/v1/jobs/inventory?query=: finished jobs only', async () => {
    const [dev] = await devices([{ id: deviceId('B') }]);
    const make = async (description: string) =>
      (await createJob({ devices: [dev] }, { description })).body.id;
    const a = await make('bq-del-1');
    const b = await make('bq-del-1');
    const c = await make('bq-del-1');
    await server.put(`/ws/v1/jobs/cancel/${a},${b}`);
    const r = await server.del(`/ws/v1/jobs/cancel?query=${q("description = 'bq-del-1'")}`);
    expect(r.status, r.text).toBe(200);
    expect(r.body).toEqual({ count: 2, skipped: 1 });
    expectError(await server.get(`/ws/v1/jobs/${a}`), 404);
    expect((await server.get(`/ws/v1/jobs/${c}`)).status).toBe(200);

    const d = await make('bq-del-2');
    await server.put(`/ws/v1/jobs/cancel/${d}`);
    const r2 = await server.del(`/ws/v1/jobs/inventory?query=${q("description = 'bq-del-2'")}`);
    expect(r2.status, r2.text).toBe(200);
    expect(r2.body).toEqual({ count: 1, skipped: 0 });
    expectError(await server.get(`/ws/v1/jobs/${d}`), 404);

    expectError(await server.del('/ws/v1/jobs/cancel'), 400);
    expectError(await server.del('/ws/v1/jobs/cancel?query='), 400);
    expectError(await server.del('/ws/v1/jobs/inventory?query='), 400);
    expectError(await server.del('/ws/v1/jobs/inventory'), 400);
  });
});

describe('§5 by query on device fields', () => {
  it('cancels the jobs whose targets match, and no other', async () => {
    const ids = await devices([
      { id: deviceId('BB'), group: '/BQ/In' },
      { id: deviceId('BB'), group: '/BQ/Out' },
    ]);
    const inJob = (await createJob({ devices: [ids[0]] })).body.id;
    const outJob = (await createJob({ devices: [ids[1]] })).body.id;
    const r = await server.put(`/ws/v1/jobs/inventory/cancel?query=${q("group startsWith '/BQ/In/'")}`);
    expect(r.body).toEqual({ count: 1, skipped: 0 });
    expect((await server.get(`/ws/v1/jobs/${inJob}`)).body.job_status).toBe('canceled');
    expect(['new', 'in_progress']).toContain((await server.get(`/ws/v1/jobs/${outJob}`)).body.job_status);
    await server.put(`/ws/v1/jobs/cancel/${outJob}`);
  });
});

describe('§6 job queries', () => {
  it('job fields, device fields of the targets, device.<field>, and the job meaning of shared names', async () => {
    const ids = await devices([
      { id: deviceId('C'), group: '/JQ/North', description: 'dev-desc-x', name: 'jq-a' },
      { id: deviceId('C'), group: '/JQ/South', name: 'jq-b' },
    ]);
    const j1 = (await createJob({ devices: [ids[0]] }, { description: 'jq-job-1', job_type: 'command' })).body
      .id;
    const j2 = (await createJob({ devices: ids }, { description: 'jq-job-2' })).body.id;
    const j3 = (await createJob({ devices: [ids[1]] }, { description: 'jq-job-3' })).body.id;
    await server.put(`/ws/v1/jobs/cancel/${j3}`);
    const match = async (query: string) => {
      const r = await server.get(
        `/ws/v1/jobs/inventory?query=${q(`description startsWith 'jq-job' and (${query})`)}`,
      );
      expect(r.status, `${query}: ${r.text}`).toBe(200);
      return r.body.list.map((j: { id: number }) => j.id).sort((x: number, y: number) => x - y);
    };
    expect(await match("job_type = 'command'")).toEqual([j1]);
    expect(await match("job_status = 'canceled'")).toEqual([j3]);
    expect(await match("job_status <> 'canceled'")).toEqual([j1, j2]);
    expect(await match("username = 'JALICE'")).toEqual([j1, j2, j3]);
    expect(await match(`id >= ${j2}`)).toEqual([j2, j3]);
    expect(await match('target_count = 2')).toEqual([j2]);
    expect(await match('progress_canceled > 0')).toEqual([j3]);
    expect(await match("group startsWith '/JQ/North'")).toEqual([j1, j2]);
    expect(await match("name = 'jq-b'")).toEqual([j2, j3]);
    expect(await match(`device.id = '${ids[0]}'`)).toEqual([j1, j2]);
    expect(await match(`device.id = '${(ids[0] as string).toLowerCase()}'`)).toEqual([j1, j2]);
    expect(await match("device.description = 'dev-desc-x'")).toEqual([j1, j2]);
    // description is the job's
    expect(await match("description = 'dev-desc-x'")).toEqual([]);
    expect(await match("description = 'jq-job-2'")).toEqual([j2]);
    // not: a job with a target that is not jq-a
    expect(await match("not name = 'jq-a'")).toEqual([j2, j3]);
    // one target satisfies the whole query together with the job
    expect(await match("name = 'jq-a' and name = 'jq-b'")).toEqual([]);
    expect(await match("name = 'jq-a' and group = '/JQ/North'")).toEqual([j1, j2]);
    expect(await match("job_submit_time > -1h and job_submit_time < '2999-01-01T00:00:00Z'")).toEqual([
      j1,
      j2,
      j3,
    ]);
    expect(await match("job_submit_time < '2000-01-01T00:00:00.000Z'")).toEqual([]);
    expect(await match('job_completion_time = empty')).toEqual([j1, j2]);
    expect(await match('job_completion_time > -1d')).toEqual([j3]);
    // targets query on status
    const t = await server.get(`/ws/v1/jobs/${j3}/targets?query=${q("status = 'canceled'")}`);
    expect(t.body.count).toBe(1);
    expectError(await server.get(`/ws/v1/jobs/${j3}/targets?query=${q("status = 'finished'")}`), 400);
  });

  it('enumerated job fields take only their values', async () => {
    expectError(await server.get(`/ws/v1/jobs/inventory?query=${q("job_status = 'done'")}`), 400);
    expectError(await server.get(`/ws/v1/jobs/inventory?query=${q("job_type = 'explode'")}`), 400);
    expectError(await server.get(`/ws/v1/jobs/inventory?query=${q("colour = 'red'")}`), 400);
    expectError(await server.get(`/ws/v1/jobs/inventory?query=${q("id = '5'")}`), 400);
  });
});

describe('§5 terminal states', () => {
  it('a canceled job stays canceled; a failed target stays failed; terminal targets are final', async () => {
    const ids = await devices([{ id: deviceId('D') }, { id: deviceId('D') }, { id: deviceId('D') }]);
    const job = (await createJob({ devices: ids })).body.id;
    // one target fails (its device is deleted), then the job is canceled
    expect((await server.del(`/ws/v1/devices/inventory/${ids[0]}`)).status).toBeLessThan(300);
    const c = await server.put(`/ws/v1/jobs/cancel/${job}`);
    expect(c.status).toBe(200);
    const after = c.body.list[0];
    expect(after.job_status).toBe('canceled');
    expect(after.progress_failures).toBe(1);
    expect(after.progress_canceled).toBe(2);
    expectCountsAddUp(after);
    // deleting the device of a canceled target changes nothing
    expect((await server.del(`/ws/v1/devices/inventory/${ids[1]}`)).status).toBeLessThan(300);
    const targets = await server.get(`/ws/v1/jobs/${job}/targets`);
    const status = Object.fromEntries(
      targets.body.list.map((t: { device_id: string; status: string }) => [t.device_id, t.status]),
    );
    expect(status).toEqual({
      [ids[0] as string]: 'failed',
      [ids[1] as string]: 'canceled',
      [ids[2] as string]: 'canceled',
    });
    const again = (await server.get(`/ws/v1/jobs/${job}`)).body;
    expect(again.job_status).toBe('canceled');
    expect(again.progress_failures).toBe(1);
    expect(again.progress_canceled).toBe(2);
    expect(again.job_completion_time).toBe(after.job_completion_time);
  });

  it('payload may be any JSON; a negative timeout is 400', async () => {
    const [id] = await devices([{ id: deviceId('E') }]);
    for (const payload of [42, 'text', [1, 'two', { three: 3 }], true, null, { a: { b: [] } }]) {
      const j = await createJob({ devices: [id] }, { payload });
      expect((await server.get(`/ws/v1/jobs/${j.body.id}`)).body.payload).toEqual(payload);
    }
    expectError(
      await server.post('/ws/v1/jobs/inventory', {
        job_type: 'reboot',
        targets: { devices: [id] },
        timeout: -1,
      }),
      400,
    );
    expectError(
      await server.post('/ws/v1/jobs/inventory', {
        job_type: 'reboot',
        targets: { devices: [id] },
        offline_timeout: -1,
      }),
      400,
    );
  });

  it('relative and absolute timestamps in job queries', async () => {
    const j = (await createJob({ devices: await devices([{ id: deviceId('F') }]) }, { description: 'ts-q' }))
      .body.id;
    const match = async (query: string) => {
      const r = await server.get(`/ws/v1/jobs/inventory?query=${q(`description = 'ts-q' and (${query})`)}`);
      expect(r.status, `${query}: ${r.text}`).toBe(200);
      return r.body.list.map((x: { id: number }) => x.id);
    };
    expect(await match('job_submit_time > -5m')).toEqual([j]);
    expect(await match('job_submit_time > -2h')).toEqual([j]);
    expect(await match('job_submit_time > -30d')).toEqual([j]);
    expect(await match('job_submit_time > -3600s')).toEqual([j]);
    expect(await match('job_submit_time < +1d')).toEqual([j]);
    expect(await match('job_submit_time > +1d')).toEqual([]);
    expect(await match("job_submit_time > '2026-01-01T00:00:00Z'")).toEqual([j]);
    expect(await match("job_submit_time >= '2000-01-01T00:00:00.000Z'")).toEqual([j]);
    expect(await match("job_status = 'new' or job_status = 'in_progress'")).toEqual([j]);
    expectError(await server.get(`/ws/v1/jobs/inventory?query=${q("job_submit_time > 'not a time'")}`), 400);
  });
});

describe('§5 counts', () => {
  it('always add up to target_count on list, detail and after cancel', async () => {
    await newJob();
    const list = await server.get('/ws/v1/jobs/inventory');
    expect(list.body.count).toBeGreaterThan(0);
    for (const job of list.body.list) {
      expectCountsAddUp(job);
      expect(job.job_submit_time).toMatch(ISO_MS);
      if (job.job_completion_time !== null) expect(job.job_completion_time).toMatch(ISO_MS);
      const targets = await server.get(`/ws/v1/jobs/${job.id}/targets`);
      expect(targets.body.count).toBe(job.target_count);
      const byStatus = (s: string[]) =>
        targets.body.list.filter((t: { status: string }) => s.includes(t.status)).length;
      expect(job.progress_pending).toBe(byStatus(['queued', 'in_progress']));
      expect(job.progress_canceled).toBe(byStatus(['canceled']));
      expect(job.progress_failures).toBe(byStatus(['failed', 'timed_out']));
      expect(job.progress_success).toBe(byStatus(['successful']));
    }
  });
});

describe('§3 never a 500 on bodies', () => {
  it('random device and job bodies answer 201, 400 or 409 with the error body', async () => {
    const [dev] = await devices([{ id: deviceId('CC') }]);
    const value = fc.oneof(
      fc.constantFrom(null, true, 0, -1, 1.5, 1e300, '', 'x', '/G', 'sensor', [], {}, ['a'], [1], { a: 1 }),
      fc.string({ maxLength: 20 }),
      fc.integer(),
    );
    const deviceKeys = fc.constantFrom(
      'id',
      'name',
      'group',
      'tags',
      'vendor_id',
      'signal_percent',
      'health_status',
      'device_token',
      'connection_status',
      'bogus',
      'ip',
    );
    const jobKeys = fc.constantFrom(
      'job_type',
      'description',
      'targets',
      'payload',
      'timeout',
      'offline_timeout',
      'bogus',
    );
    const targetKeys = fc.constantFrom('devices', 'groups', 'tags', 'query', 'all', 'bogus');
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(deviceKeys, value, { maxKeys: 5 }),
        fc.dictionary(jobKeys, value, { maxKeys: 5 }),
        fc.dictionary(targetKeys, fc.oneof(value, fc.constant([dev]), fc.constant(true)), { maxKeys: 3 }),
        async (device, job, targets) => {
          n += 1;
          const withId = {
            id: `00000000-00000000-0000CCCC-${n.toString(16).padStart(8, '0').toUpperCase()}`,
            ...device,
          };
          for (const body of [device, withId, [withId]]) {
            const r = await server.post('/ws/v1/devices/inventory', body);
            expect([201, 400, 409], `${JSON.stringify(body)}: ${r.text}`).toContain(r.status);
            if (r.status !== 201)
              expect(r.body).toEqual({ error_status: r.status, error_message: expect.any(String) });
          }
          for (const body of [job, { job_type: 'reboot', ...job, targets }]) {
            const r = await server.post('/ws/v1/jobs/inventory', body);
            expect([201, 400], `${JSON.stringify(body)}: ${r.text}`).toContain(r.status);
            if (r.status === 400)
              expect(r.body).toEqual({ error_status: 400, error_message: expect.any(String) });
          }
        },
      ),
      { numRuns: 120, seed: 7 },
    );
  });
});
