/**
 * A 100,000-target job is created and dispatched in batches without blocking the event loop that
 * also serves HTTP: prints how long creation and dispatch took and the worst event-loop delay.
 * Devices count as connected in the store (no MQTT clients), so the figure is the service's own.
 *
 *   npx tsx bench/dispatch-large.ts [--targets 100000]
 */
import { rmSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { newDeviceId, startService, tempDir } from '../test/dispatch/harness.js';
import { setConnection } from '../test/setup/presence.js';

const { values } = parseArgs({ options: { targets: { type: 'string', default: '100000' } } });
const TARGETS = Number(values.targets);

const dir = tempDir();
const service = await startService({ dbPath: `${dir}/fleetjobs.db` });
const ids: string[] = [];
for (let left = TARGETS; left > 0; left -= 10_000) {
  const inputs = Array.from({ length: Math.min(left, 10_000) }, () => ({ id: newDeviceId() }));
  await service.jobs.createDevices(service.accountId, inputs);
  ids.push(...inputs.map((input) => input.id.toUpperCase()));
}
for (const id of ids) await setConnection(service.store, id, 'connected', Date.now());

const delay = monitorEventLoopDelay({ resolution: 5 });
delay.enable();
let started = Date.now();
const jobId = await service.createJob({ targets: { all: true } });
const created = Date.now() - started;
started = Date.now();
const last = ids.sort().at(-1) ?? '';
for (;;) {
  const [target] =
    (await service.store.listTargets(jobId, {
      accountId: service.accountId,
      query: null,
      order: { field: 'device_id', direction: 'desc' },
      after: null,
      limit: 1,
    })) ?? [];
  if (target?.device_id === last && target.status !== 'queued') break;
  await sleep(20);
}
delay.disable();
console.log(
  `job to ${TARGETS} devices: created in ${created} ms, every request published in ${Date.now() - started} ms; ` +
    `event-loop delay max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms`,
);
await service.stop();
rmSync(dir, { recursive: true, force: true });
