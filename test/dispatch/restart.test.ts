import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { JobService } from '../../src/jobs/service.js';
import type { JobDetail, JobTarget } from '../../src/model/job.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';
import { freePort } from '../process.js';
import { eventually, TestDevice, tempDir } from './harness.js';

const SCRIPT = join(import.meta.dirname, 'service-process.ts');

/** The service in a child process, driven over its stdin/stdout. */
class ServiceProcess {
  readonly #lines: Interface;
  readonly #pending: ((line: string) => void)[] = [];

  private constructor(readonly child: ChildProcess) {
    this.#lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    this.#lines.on('line', (line) => this.#pending.shift()?.(line));
  }

  static async start(dbPath: string, port: number): Promise<ServiceProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT, dbPath, String(port)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const service = new ServiceProcess(child);
    const ready = await service.#nextLine();
    if (ready !== 'ready') throw new Error(`service process said ${ready}`);
    return service;
  }

  #nextLine(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#pending.push(resolve);
      this.child.once('exit', (code) => reject(new Error(`service process exited (${code})`)));
    });
  }

  async command<T>(command: object): Promise<T> {
    const answer = this.#nextLine();
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
    return JSON.parse(await answer) as T;
  }

  /** SIGTERM; resolves with the exit status. */
  async terminate(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    return exited;
  }

  async kill(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGKILL');
    await exited;
  }
}

const children: ServiceProcess[] = [];
const devices: TestDevice[] = [];
let reader: Store | null = null;

afterEach(async () => {
  for (const device of devices.splice(0)) device.client.end(true);
  for (const child of children.splice(0))
    if (child.child.exitCode === null && child.child.signalCode === null) await child.kill();
  await reader?.close();
  reader = null;
});

describe('restart', () => {
  it('after kill -9 mid-job nothing is lost: in-progress requests are sent again, queued ones and new jobs go out', async () => {
    const dbPath = join(tempDir(), 'fleetjobs.db');
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const first = await ServiceProcess.start(dbPath, port);
    children.push(first);
    const [a, b, c] = await first.command<{ id: string; token: string }[]>({ addDevices: 3 });
    if (!a || !b || !c) throw new Error('no devices');

    const deviceA = await TestDevice.connect(url, a.id, a.token);
    const deviceB = await TestDevice.connect(url, b.id, b.token);
    devices.push(deviceA, deviceB);
    reader = await openSqliteStore(dbPath);
    const store = reader;
    const account = await store.ensureAccount('acme', Date.now());
    const connected = async (id: string) =>
      (await store.getDevice(account.id, id))?.connection_status === 'connected';
    await eventually(() => connected(b.id), 'device B connected');
    const { id: jobId } = await first.command<{ id: number }>({
      createJob: { job_type: 'reboot', targets: { devices: [a.id, b.id, c.id] } },
    });
    await deviceA.next('request', jobId);
    await deviceB.next('request', jobId);
    await deviceA.status(jobId, { status: 'successful' });

    await first.kill();
    // While the service is down, a job is submitted (by a CLI or a second process on the store).
    const { id: waitingJobId } = await new JobService(store).createJob(account.id, 'alice', {
      job_type: 'command',
      targets: { devices: [b.id] },
      payload: 'uptime',
    });
    expect((await store.getJob(account.id, waitingJobId))?.job_status).toBe('new');

    const second = await ServiceProcess.start(dbPath, port);
    children.push(second);
    expect(await connected(b.id)).toBe(false);
    const jobOf = async (id: number) => (await store.getJob(account.id, id)) as JobDetail;
    const targetsOf = async (id: number) =>
      (await store.listTargets(id, {
        accountId: account.id,
        query: null,
        order: { field: 'device_id', direction: 'asc' },
        after: null,
        limit: 10,
      })) as JobTarget[];
    expect(await jobOf(jobId)).toMatchObject({
      job_status: 'in_progress',
      progress_success: 1,
      progress_pending: 2,
    });
    await eventually(
      async () => (await jobOf(waitingJobId)).job_status === 'in_progress',
      'the waiting job started',
    );

    const againB = await TestDevice.connect(url, b.id, b.token);
    const lateC = await TestDevice.connect(url, c.id, c.token);
    devices.push(againB, lateC);
    const resent = await againB.next('request', jobId);
    expect(resent.body).toMatchObject({ job_id: jobId, job_type: 'reboot' });
    await againB.next('request', waitingJobId);
    await lateC.next('request', jobId);
    await againB.status(jobId, { status: 'successful' });
    await againB.status(waitingJobId, { status: 'successful' });
    await lateC.status(jobId, { status: 'failed' });
    await eventually(async () => (await jobOf(jobId)).job_status === 'complete', 'the first job complete');
    expect(await jobOf(jobId)).toMatchObject({
      progress_success: 2,
      progress_failures: 1,
      progress_pending: 0,
    });
    expect((await targetsOf(jobId)).map((target) => target.status)).toEqual(
      [a.id, b.id, c.id]
        .map((id, index) => ({ id, status: index === 2 ? 'failed' : 'successful' }))
        .sort((x, y) => (x.id < y.id ? -1 : 1))
        .map((target) => target.status),
    );
    await eventually(
      async () => (await jobOf(waitingJobId)).job_status === 'complete',
      'the waiting job complete',
    );
  });

  it('SIGTERM during a backlog exits 0 and loses nothing; each device had at most 10 requests in flight', async () => {
    const dbPath = join(tempDir(), 'fleetjobs.db');
    const port = await freePort();
    const url = `mqtt://127.0.0.1:${port}`;
    const service = await ServiceProcess.start(dbPath, port);
    children.push(service);
    const identities = await service.command<{ id: string; token: string }[]>({ addDevices: 20 });
    for (const { id, token } of identities) {
      const device = await TestDevice.connect(url, id, token);
      devices.push(device);
      // never acknowledges: every request it gets stays in flight
      device.client.handleMessage = () => undefined;
    }
    reader = await openSqliteStore(dbPath);
    const store = reader;
    const account = await store.ensureAccount('acme', Date.now());
    const jobIds: number[] = [];
    for (let i = 0; i < 40; i++) {
      const { id } = await service.command<{ id: number }>({
        createJob: { job_type: 'reboot', targets: { all: true } },
      });
      jobIds.push(id);
    }
    const counts = async () => {
      const jobs = await Promise.all(jobIds.map((id) => store.getJob(account.id, id)));
      return jobs.reduce(
        (sum, job) => ({
          targets: sum.targets + (job?.target_count ?? 0),
          pending: sum.pending + (job?.progress_pending ?? 0),
        }),
        { targets: 0, pending: 0 },
      );
    };
    const inProgress = async () =>
      (
        await Promise.all(
          jobIds.map(
            async (id) =>
              (await store.listTargets(id, {
                accountId: account.id,
                query: null,
                order: { field: 'device_id', direction: 'asc' },
                after: null,
                limit: 100,
              })) ?? [],
          ),
        )
      )
        .flat()
        .filter((target) => target.status === 'in_progress');
    await eventually(async () => (await inProgress()).length >= 200, '10 requests in flight to each device');

    expect(await service.terminate()).toBe(0);
    expect(await counts()).toEqual({ targets: 800, pending: 800 });
    const perDevice = new Map<string, number>();
    for (const target of await inProgress()) {
      perDevice.set(target.device_id, (perDevice.get(target.device_id) ?? 0) + 1);
    }
    expect([...perDevice.values()]).toEqual(identities.map(() => 10));
  });
});
