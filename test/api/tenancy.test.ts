import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

/** What an account sees of itself, as text: must be unchanged by the other account's attempts. */
async function view(h: Harness, caller: Caller): Promise<string> {
  const parts = await Promise.all(
    ['/ws/v1/jobs/bulk', '/ws/v1/devices/bulk', '/ws/v1/jobs/inventory'].map(
      async (url) => (await h.get(caller, url)).body,
    ),
  );
  return parts.join('\n');
}

describe('two accounts never see, count, change or delete each other', () => {
  let h: Harness;
  let bob: Caller;
  let mallory: Caller;
  let bobJob: number;
  let bobFinished: number;
  let bobView: string;

  beforeAll(async () => {
    h = await Harness.start();
    bob = await h.user('acme', 'bob');
    mallory = await h.user('globex', 'mallory', 'admin');
    await h.devices(bob, 2, () => ({ tags: ['shared'], group: '/Shared' }));
    await h.devices(mallory, 1, () => ({ tags: ['shared'], group: '/Shared' }), 1);
    bobJob = (await h.job(bob, { targets: { all: true } })).id;
    bobFinished = (await h.job(bob, { targets: { all: true } })).id;
    await h.put(bob, `/ws/v1/jobs/cancel/${bobFinished}`);
    await h.job(mallory, { targets: { all: true } });
    bobView = await view(h, bob);
  });
  afterAll(async () => {
    expect(await view(h, bob)).toBe(bobView);
    await h.close();
  });

  it('lists, exports and summaries show only the own account', async () => {
    const jobs = (await h.get(mallory, '/ws/v1/jobs/inventory')).json();
    expect(jobs.count).toBe(1);
    expect(jobs.list[0].customer_id).toBe(mallory.accountId);
    const devices = (await h.get(mallory, '/ws/v1/devices/inventory')).json();
    expect(devices.list.map((device: { id: string }) => device.id)).toEqual([deviceId(1, 1)]);
    const csv = (await h.get(mallory, '/ws/v1/jobs/bulk')).body.trim().split('\r\n');
    expect(csv).toHaveLength(2);
    expect(
      (await h.get(mallory, `/ws/v1/jobs/inventory?query=${encodeURIComponent(`id = ${bobJob}`)}`)).json()
        .count,
    ).toBe(0);
    expect(
      (
        await h.get(
          mallory,
          `/ws/v1/jobs/inventory?query=${encodeURIComponent(`device.id = '${deviceId(1)}'`)}`,
        )
      ).json().count,
    ).toBe(0);
  });

  it("reading the other account's job or device is 404, like an id that does not exist", async () => {
    for (const url of [
      `/ws/v1/jobs/${bobJob}`,
      `/ws/v1/jobs/inventory/${bobJob}`,
      `/ws/v1/jobs/${bobJob}/targets`,
      `/ws/v1/jobs/${bobJob}/targets/bulk`,
      `/ws/v1/devices/inventory/${deviceId(1)}`,
    ]) {
      expectError(await h.get(mallory, url), 404);
    }
  });

  it("cancelling, deleting or changing the other account's objects is 404 and changes nothing", async () => {
    expectError(await h.put(mallory, `/ws/v1/jobs/cancel/${bobJob}`), 404);
    expectError(await h.put(mallory, `/ws/v1/jobs/cancel${bobJob}?force=true`), 404);
    expectError(await h.put(mallory, `/ws/v1/jobs/cancel/${bobJob},${bobFinished}`), 404);
    expectError(await h.delete(mallory, `/ws/v1/jobs/inventory/${bobFinished}`), 404);
    expectError(await h.put(mallory, `/ws/v1/devices/inventory/${deviceId(1)}`, { name: 'mine now' }), 404);
    expectError(await h.delete(mallory, `/ws/v1/devices/inventory/${deviceId(1)}`), 404);
    expectError(await h.post(mallory, `/ws/v1/devices/inventory/${deviceId(1)}/token`), 404);
  });

  it("by-query cancel and delete never count the other account's jobs", async () => {
    const all = encodeURIComponent('id > 0');
    const canceled = (await h.put(mallory, `/ws/v1/jobs/inventory/cancel?query=${all}`)).json();
    expect(canceled).toEqual({ count: 1, skipped: 0 });
    const deleted = (await h.delete(mallory, `/ws/v1/jobs/inventory?query=${all}`)).json();
    expect(deleted).toEqual({ count: 1, skipped: 0 });
    expect((await h.delete(mallory, `/ws/v1/jobs/cancel?query=${all}`)).json()).toEqual({
      count: 0,
      skipped: 0,
    });
  });

  it("a job cannot target the other account's devices, nor may a device id be taken twice", async () => {
    expectError(
      await h.post(mallory, '/ws/v1/jobs/inventory', {
        job_type: 'reboot',
        targets: { devices: [deviceId(1)] },
      }),
      400,
    );
    const tagged = await h.job(mallory, { targets: { tags: ['shared'] } });
    expect(tagged.target_count).toBe(1);
    await h.put(mallory, `/ws/v1/jobs/cancel/${tagged.id}`);
    expectError(await h.post(mallory, '/ws/v1/devices/inventory', { id: deviceId(1) }), 409);
  });
});
