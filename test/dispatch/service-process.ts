/**
 * The service's store, job service and dispatch in a process of its own, for tests that kill it.
 * argv: <db path> <mqtt port>. Prints `ready` once devices can connect; then reads commands, one
 * JSON object a line on stdin, and answers each with one JSON line on stdout:
 * {"addDevices": n} → [{id, token}], {"createJob": {...}} → {id}, {"loopDelay": true} → the worst
 * event-loop delay since the last such command and its 99th percentile, in ms. SIGTERM stops it as `fleetjobs serve`
 * does: dispatch, then the store close, and it exits 0 (1 if that failed).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { startDispatch } from '../../src/dispatch/index.js';
import { JobService } from '../../src/jobs/service.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

const [dbPath, port] = process.argv.slice(2);
if (!dbPath || !port) throw new Error('usage: service-process.ts <db path> <mqtt port>');

const store = await openSqliteStore(dbPath);
const jobs = new JobService(store);
const account = await store.ensureAccount('acme', Date.now());
const loopDelay = monitorEventLoopDelay({ resolution: 5 });
loopDelay.enable();
const dispatch = await startDispatch({
  store,
  jobs,
  mqttHost: '127.0.0.1',
  mqttPort: Number(port),
  logger: pino({ level: process.env.LOG_LEVEL ?? 'silent' }, pino.destination(2)),
});
process.on('SIGTERM', () => {
  dispatch
    .close()
    .then(() => store.close())
    .then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
});
console.log('ready');

let counter = 0;
for await (const line of createInterface({ input: process.stdin })) {
  const command = JSON.parse(line) as {
    addDevices?: number;
    createJob?: Parameters<JobService['createJob']>[2];
    loopDelay?: true;
  };
  if (command.addDevices !== undefined) {
    const inputs = Array.from({ length: command.addDevices }, () => ({
      id: `00000000-00000000-${process.pid.toString(16).padStart(8, '0')}-${(++counter).toString(16).padStart(8, '0')}`,
    }));
    const created = await jobs.createDevices(account.id, inputs);
    console.log(JSON.stringify(created.map((device) => ({ id: device.id, token: device.device_token }))));
  } else if (command.createJob) {
    const job = await jobs.createJob(account.id, 'alice', command.createJob);
    console.log(JSON.stringify({ id: job.id }));
  } else if (command.loopDelay) {
    console.log(JSON.stringify({ max: loopDelay.max / 1e6, p99: loopDelay.percentile(99) / 1e6 }));
    loopDelay.reset();
  }
}
