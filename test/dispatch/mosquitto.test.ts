import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { freePort } from '../process.js';
import { MOSQUITTO } from '../setup/system-programs.js';
import {
  eventually,
  jobBecomes,
  type Service,
  startService,
  TestDevice,
  targetBecomes,
  targetsOf,
  tempDir,
} from './harness.js';

/** Mosquitto from Debian (`apt-get install mosquitto`); these tests fail, not skip, without it. */
const MOSQUITTO_PASSWD = '/usr/bin/mosquitto_passwd';
const SERVICE_USER = 'fleetjobs-service';
const SERVICE_PASSWORD = 'service-secret-for-tests';

/** A Mosquitto with a password file and the ACL of CONTRACT §7: a device only under its own topics. */
class Mosquitto {
  private constructor(
    readonly process: ChildProcess,
    readonly port: number,
    readonly passwordFile: string,
    readonly config: string,
  ) {}

  static async start(): Promise<Mosquitto> {
    if (!existsSync(MOSQUITTO) || !existsSync(MOSQUITTO_PASSWD)) {
      throw new Error(`${MOSQUITTO} is missing: apt-get install -y mosquitto`);
    }
    const dir = tempDir();
    const port = await freePort();
    const passwordFile = join(dir, 'passwd');
    const aclFile = join(dir, 'acl');
    const config = join(dir, 'mosquitto.conf');
    execFileSync(MOSQUITTO_PASSWD, ['-c', '-b', passwordFile, SERVICE_USER, SERVICE_PASSWORD]);
    writeFileSync(
      aclFile,
      `user ${SERVICE_USER}\ntopic readwrite fleetjobs/#\n\npattern readwrite fleetjobs/%u/#\n`,
    );
    writeFileSync(
      config,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous false',
        `password_file ${passwordFile}`,
        `acl_file ${aclFile}`,
        'persistence false',
        'log_dest stderr',
        'log_type error',
        // as root, Mosquitto would switch to its own user, which cannot read the test's files
        ...(process.getuid?.() === 0 ? ['user root'] : []),
      ].join('\n'),
    );
    const mosquitto = Mosquitto.spawn(port, passwordFile, config);
    await mosquitto.listening();
    return mosquitto;
  }

  private static spawn(port: number, passwordFile: string, config: string): Mosquitto {
    const child = spawn(MOSQUITTO, ['-c', config], { stdio: ['ignore', 'ignore', 'inherit'] });
    return new Mosquitto(child, port, passwordFile, config);
  }

  /** Kills this Mosquitto (no Will is sent) and starts a new one on the same port: sessions and retained messages are gone. */
  async crashAndRestart(): Promise<Mosquitto> {
    await this.stop('SIGKILL');
    const restarted = Mosquitto.spawn(this.port, this.passwordFile, this.config);
    await restarted.listening();
    return restarted;
  }

  async listening(): Promise<void> {
    await eventually(async () => {
      try {
        const client = await mqtt.connectAsync(this.url(SERVICE_USER, SERVICE_PASSWORD), {
          reconnectPeriod: 0,
        });
        await client.endAsync();
        return true;
      } catch {
        return false;
      }
    }, 'mosquitto listening');
  }

  url(username?: string, password?: string): string {
    const auth = username ? `${encodeURIComponent(username)}:${encodeURIComponent(password ?? '')}@` : '';
    return `mqtt://${auth}127.0.0.1:${this.port}`;
  }

  /** Adds device logins and makes Mosquitto reload its password file. */
  async addUsers(users: { id: string; token: string }[]): Promise<void> {
    for (const { id, token } of users) execFileSync(MOSQUITTO_PASSWD, ['-b', this.passwordFile, id, token]);
    this.process.kill('SIGHUP');
    const last = users.at(-1);
    if (!last) return;
    await eventually(async () => {
      try {
        const client = await mqtt.connectAsync(this.url(), {
          clientId: `probe-${last.id}`,
          username: last.id,
          password: last.token,
          reconnectPeriod: 0,
        });
        await client.endAsync();
        return true;
      } catch {
        return false;
      }
    }, 'mosquitto reloaded its passwords');
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    const exited = new Promise((resolve) => this.process.once('exit', resolve));
    this.process.kill(signal);
    await exited;
  }
}

let mosquitto: Mosquitto;
let service: Service;
const devices: TestDevice[] = [];

const connect = async (id: string, token: string, options: { announce?: boolean } = {}) => {
  const device = await TestDevice.connect(mosquitto.url(), id, token, options);
  devices.push(device);
  return device;
};

const connectionOf = async (id: string) =>
  (await service.store.getDevice(service.accountId, id))?.connection_status;

beforeEach(async () => {
  mosquitto = await Mosquitto.start();
  service = await startService({ mqttUrl: mosquitto.url(SERVICE_USER, SERVICE_PASSWORD) });
});

afterEach(async () => {
  for (const device of devices.splice(0)) device.client.end(true);
  await service.stop();
  await mosquitto.stop();
});

describe('with an external broker (Mosquitto)', () => {
  it('presence, requests, status and the Will work as on the embedded broker', async () => {
    const users = await service.addDevices(2);
    await mosquitto.addUsers(users);
    const [a, b] = users;
    if (!a || !b) throw new Error('no devices');
    const deviceA = await connect(a.id, a.token);
    await eventually(async () => (await connectionOf(a.id)) === 'connected', 'device A connected');
    const jobId = await service.createJob({ targets: { devices: [a.id, b.id] }, payload: { x: 1 } });
    const request = await deviceA.next('request', jobId);
    expect(request.body).toEqual({
      job_id: jobId,
      job_type: 'reboot',
      payload: { x: 1 },
      timeout: 600,
      attempt: 1,
    });
    expect((await targetsOf(service, jobId)).get(b.id)?.status).toBe('queued');

    const deviceB = await connect(b.id, b.token);
    await deviceB.next('request', jobId);
    await deviceA.status(jobId, { status: 'successful' });
    await deviceB.status(jobId, { status: 'in_progress', progress: 50 });
    await targetBecomes(service, jobId, a.id, 'successful');
    deviceB.drop();
    await eventually(async () => (await connectionOf(b.id)) === 'disconnected', 'the Will of device B');
    expect((await targetsOf(service, jobId)).get(b.id)).toMatchObject({
      status: 'in_progress',
      progress: 50,
    });

    const againB = await connect(b.id, b.token);
    await againB.next('request', jobId);
    await againB.status(jobId, { status: 'failed', message: 'gave up' });
    await jobBecomes(service, jobId, 'complete');
  });

  it('a device cannot act for another one (the ACL drops it) and bad payloads change nothing', async () => {
    const users = await service.addDevices(2);
    await mosquitto.addUsers(users);
    const [a, b] = users;
    if (!a || !b) throw new Error('no devices');
    const deviceA = await connect(a.id, a.token);
    const deviceB = await connect(b.id, b.token);
    const jobId = await service.createJob({ targets: { devices: [b.id] } });
    await deviceB.next('request', jobId);
    await deviceA.client.publishAsync(
      `fleetjobs/${b.id}/jobs/${jobId}/status`,
      JSON.stringify({ status: 'failed' }),
      {
        qos: 1,
      },
    );
    await deviceB.status(jobId, '{broken');
    await deviceB.status(jobId, { status: 'exploded' });
    await deviceB.status(jobId, { status: 'in_progress', progress: 10 });
    await eventually(async () => (await targetsOf(service, jobId)).get(b.id)?.progress === 10, 'progress 10');
    expect((await targetsOf(service, jobId)).get(b.id)?.status).toBe('in_progress');
    await deviceA.client.endAsync();
  });

  it('a device announcing itself twice while its requests are sent does not stall the service', async () => {
    const users = await service.addDevices(2);
    await mosquitto.addUsers(users);
    const [a, b] = users;
    if (!a || !b) throw new Error('no devices');
    const jobIds: number[] = [];
    for (let i = 0; i < 5; i++) jobIds.push(await service.createJob({ targets: { devices: [a.id] } }));
    const deviceA = await connect(a.id, a.token, { announce: false });
    // online twice in a row: the second arrives while the service is sending the first one's requests
    await Promise.all([deviceA.announce('online'), deviceA.announce('online')]);
    for (const jobId of jobIds) await deviceA.next('request', jobId);
    // the service still takes in what devices publish
    const deviceB = await connect(b.id, b.token);
    await eventually(async () => (await connectionOf(b.id)) === 'connected', 'device B connected');
    const later = await service.createJob({ targets: { devices: [b.id] } });
    await deviceB.next('request', later);
    await deviceB.status(later, { status: 'successful' });
    await jobBecomes(service, later, 'complete');
    for (const jobId of jobIds) await deviceA.status(jobId, { status: 'successful' });
    for (const jobId of jobIds) await jobBecomes(service, jobId, 'complete');
  });

  it('after the broker crashes and restarts the service joins it again and forgets who was online', async () => {
    const users = await service.addDevices(2);
    await mosquitto.addUsers(users);
    const [a, b] = users;
    if (!a || !b) throw new Error('no devices');
    await connect(a.id, a.token);
    await connect(b.id, b.token);
    await eventually(async () => (await connectionOf(b.id)) === 'connected', 'device B connected');

    mosquitto = await mosquitto.crashAndRestart();
    // only device A comes back; B's connection died with the broker, and no Will was published
    const againA = await connect(a.id, a.token);
    await eventually(async () => (await connectionOf(b.id)) === 'disconnected', 'device B disconnected');
    await eventually(async () => (await connectionOf(a.id)) === 'connected', 'device A connected');
    const jobId = await service.createJob({ targets: { devices: [a.id] } });
    await againA.next('request', jobId);
    await againA.status(jobId, { status: 'successful' });
    await jobBecomes(service, jobId, 'complete');
  });

  it('the service stops while the broker is down, with requests not yet delivered', async () => {
    const users = await service.addDevices(1);
    await mosquitto.addUsers(users);
    const [d] = users;
    if (!d) throw new Error('no device');
    await connect(d.id, d.token);
    await eventually(async () => (await connectionOf(d.id)) === 'connected', 'device connected');
    await mosquitto.stop('SIGKILL');
    const jobId = await service.createJob({ targets: { devices: [d.id] } });
    await targetBecomes(service, jobId, d.id, 'in_progress');
    const stopped = await Promise.race([
      service.stop().then(() => 'stopped'),
      new Promise((resolve) => setTimeout(resolve, 15_000, 'still stopping')),
    ]);
    expect(stopped).toBe('stopped');
    service = await startService();
  });

  it('after a restart, retained presence tells who is online and statuses apply again', async () => {
    const users = await service.addDevices(1);
    await mosquitto.addUsers(users);
    const [d] = users;
    if (!d) throw new Error('no device');
    const device = await connect(d.id, d.token);
    const jobId = await service.createJob({ targets: { devices: [d.id] } });
    await device.next('request', jobId);
    await eventually(async () => (await connectionOf(d.id)) === 'connected', 'device connected');

    const { dbPath } = service;
    await service.dispatch.close();
    await service.store.close();
    // The node's session is clean (CONTRACT §8: several nodes share the device topics, and a
    // persistent session would hold messages for a node that may not return): what a device
    // publishes while no node runs is not kept for the service.
    const restarted = await startService({ dbPath, mqttUrl: mosquitto.url(SERVICE_USER, SERVICE_PASSWORD) });
    service = restarted;
    await eventually(async () => (await connectionOf(d.id)) === 'connected', 'device connected again');
    await device.status(jobId, { status: 'successful', message: 'after the restart' });
    const target = await targetBecomes(service, jobId, d.id, 'successful');
    expect(target.message).toBe('after the restart');
    await jobBecomes(service, jobId, 'complete');
  });
});
