import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Caller, deviceId, expectError, Harness } from './harness.js';

const BATCH = 20;
/** A device with a long name: a batch of them takes a few pages. */
const batch = (first: number) =>
  Array.from({ length: BATCH }, (_, index) => ({
    id: deviceId(first + index),
    name: `device ${first + index} ${'x'.repeat(2_000)}`,
  }));

describe('a full store (§13)', () => {
  let h: Harness;
  let alice: Caller;
  const logged: string[] = [];

  beforeAll(async () => {
    const logger = pino({ level: 'error' }, { write: (line: string) => logged.push(line) });
    // 200 pages of 4 KiB: room for a few hundred of these devices after the schema.
    h = await Harness.start({ logger, store: { maxPageCount: 200 } });
    alice = await h.user('acme', 'alice');
  });
  afterAll(() => h.close());

  const countDevices = async () =>
    ((await h.get(alice, '/ws/v1/devices/inventory')).json() as { count: number }).count;

  it('answers writes 507 with the cause logged, keeps reads working, and takes writes again once space is free', async () => {
    let created = 0;
    let response = await h.post(alice, '/ws/v1/devices/inventory', batch(1));
    while (response.statusCode === 201 && created < 10_000) {
      created += BATCH;
      response = await h.post(alice, '/ws/v1/devices/inventory', batch(created + 1));
    }
    expectError(response, 507);
    expect(response.json()).toEqual({ error_status: 507, error_message: 'the store is out of space' });
    expect(logged.join('\n')).toMatch(/out of space/);
    expect(logged.join('\n')).toMatch(/SQLITE_FULL/);
    expect(logged.join('\n')).not.toMatch(/cannot rollback/);

    // Nothing of the failed batch was written, and reads still work.
    expect(created).toBeGreaterThan(BATCH * 2);
    expect(await countDevices()).toBe(created);
    expectError(await h.get(alice, `/ws/v1/devices/inventory/${deviceId(created + 1)}`), 404);

    // Deleting devices frees pages once their events are pruned (the outbox keeps each change an
    // hour for the live stream): the same batch now fits, without a restart.
    for (let n = 1; n <= BATCH * 2; n++) {
      expect((await h.delete(alice, `/ws/v1/devices/inventory/${deviceId(n)}`)).statusCode).toBe(200);
    }
    await h.store.pruneEvents(Date.now() + 2 * 3_600_000);
    const again = await h.post(alice, '/ws/v1/devices/inventory', batch(created + 1));
    expect(again.statusCode, again.body).toBe(201);
    expect(await countDevices()).toBe(created - BATCH);
  });
});
