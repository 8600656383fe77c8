import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../blackbox/harness.js';
import { freePort, ROOT } from '../process.js';

/**
 * The built `bin/fleetjobs` (`npm run build`), driven only over its command line and HTTP: users and keys made with
 * the CLI (also while the server runs), a session over HTTP, and a clean stop on SIGTERM.
 */

const BIN = join(ROOT, 'bin', 'fleetjobs');

interface Server {
  child: ChildProcessWithoutNullStreams;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

async function serve(db: string): Promise<Server> {
  const port = await freePort();
  const mqttPort = await freePort();
  const child = spawn(BIN, ['serve', '--port', String(port), '--mqtt-port', String(mqttPort), '--db', db], {
    cwd: ROOT,
  });
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (attempt > 200 || child.exitCode !== null) throw new Error(`serve did not start: ${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { child, url, output: () => output, exited };
}

const basic = (username: string, password: string) => ({
  authorization: `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`,
});

describe('bin/fleetjobs, black-box', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-acceptance-'));
  const db = join(dir, 'data', 'fleetjobs.db');
  let server: Server | undefined;

  // Builds nothing (other suites run the same dist/ at the same time): `npm ci` builds, via `prepare`.
  beforeAll(() => {
    if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js'))) {
      throw new Error('dist/cli/main.js is missing: run `npm run build` first');
    }
  });
  afterAll(() => {
    if (server !== undefined && server.child.exitCode === null) server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('on an empty store, serve tells in one line how to create a user, and stops with exit 0 on SIGTERM', async () => {
    const empty = await serve(join(dir, 'empty', 'fleetjobs.db'));
    expect(empty.output()).toMatch(/user add --account/);
    empty.child.kill('SIGTERM');
    expect(await empty.exited).toBe(0);
  });

  it('runs a session: CLI users and keys, then devices, a job, lists, XML, CSV, cancel and delete over HTTP', async () => {
    const added = await runCli(
      ['user', 'add', '--account', 'acme', '--username', 'alice', '--db', db],
      's3cret password\n',
    );
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ username: 'alice', role: 'user' });
    const key = JSON.parse((await runCli(['apikey', 'add', '--username', 'alice', '--db', db])).stdout);

    server = await serve(db);
    expect(server.output()).not.toMatch(/user add --account/);
    const alice = { ...basic('alice', 's3cret password'), 'content-type': 'application/json' };
    const api = (path: string, init: RequestInit = {}) =>
      fetch(`${server?.url}${path}`, { ...init, headers: { ...alice, ...(init.headers ?? {}) } });

    expect((await fetch(`${server.url}/ws/v1/jobs`)).status).toBe(401);
    const devices = await api('/ws/v1/devices/inventory', {
      method: 'POST',
      body: JSON.stringify([
        { id: '00000000-00000000-00000000-00000001', group: '/NorthWest/Seattle', tags: ['sensor'] },
        { id: '00000000-00000000-00000000-00000002', group: '/South' },
      ]),
    });
    expect(devices.status).toBe(201);
    expect(((await devices.json()) as { count: number }).count).toBe(2);

    const created = await api('/ws/v1/jobs/inventory', {
      method: 'POST',
      body: JSON.stringify({
        job_type: 'reboot',
        description: 'a, "b"\nc',
        targets: { groups: ['/NorthWest'] },
      }),
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { id: number; target_count: number };
    expect(created.headers.get('location')).toBe(`/ws/v1/jobs/${job.id}`);
    expect(job.target_count).toBe(1);

    const byKey = await fetch(
      `${server.url}/ws/v1/jobs/inventory?query=${encodeURIComponent("tags = 'sensor'")}`,
      {
        headers: { 'x-api-key-id': key.id, 'x-api-key-secret': key.secret },
      },
    );
    expect(byKey.status).toBe(200);
    expect(((await byKey.json()) as { list: { id: number }[] }).list.map((item) => item.id)).toEqual([
      job.id,
    ]);

    const xml = await api('/ws/v1/jobs/inventory.xml');
    expect(await xml.text()).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><result><count>1<\/count>/);
    const csv = await (await api('/ws/v1/jobs/bulk?fields=id,description')).text();
    expect(csv).toBe(`id,description\r\n${job.id},"a, ""b""\nc"\r\n`);

    expect((await api(`/ws/v1/jobs/inventory/${job.id}`, { method: 'DELETE' })).status).toBe(409);
    const canceled = await api(`/ws/v1/jobs/cancel${job.id}`, { method: 'PUT' });
    expect(((await canceled.json()) as { list: { job_status: string }[] }).list[0]?.job_status).toBe(
      'canceled',
    );
    const deleted = await api(`/ws/v1/jobs/inventory/${job.id}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ count: 1, list: [job.id] });
    expect((await api(`/ws/v1/jobs/${job.id}`)).status).toBe(404);
  });

  it('administers users and keys while the server runs on the same store', async () => {
    if (server === undefined) throw new Error('no server');
    const bob = await runCli([
      'user',
      'add',
      '--account',
      'acme',
      '--username',
      'bob',
      '--password',
      'pw',
      '--role',
      'read_only',
      '--db',
      db,
    ]);
    expect(bob.code, bob.stderr).toBe(0);
    expect((await fetch(`${server.url}/ws/v1/jobs/inventory`, { headers: basic('bob', 'pw') })).status).toBe(
      200,
    );
    const write = await fetch(`${server.url}/ws/v1/jobs/inventory/cancel?query=id%3E0`, {
      method: 'PUT',
      headers: basic('bob', 'pw'),
    });
    expect(write.status).toBe(403);

    const key = JSON.parse((await runCli(['apikey', 'add', '--username', 'bob', '--db', db])).stdout);
    const headers = { 'x-api-key-id': key.id, 'x-api-key-secret': key.secret };
    expect((await fetch(`${server.url}/ws/v1/devices/inventory`, { headers })).status).toBe(200);
    expect((await runCli(['apikey', 'revoke', key.id, '--db', db])).code).toBe(0);
    expect((await fetch(`${server.url}/ws/v1/devices/inventory`, { headers })).status).toBe(401);

    expect((await runCli(['user', 'remove', '--username', 'bob', '--db', db])).code).toBe(0);
    expect((await fetch(`${server.url}/ws/v1/jobs/inventory`, { headers: basic('bob', 'pw') })).status).toBe(
      401,
    );
    const taken = await runCli([
      'user',
      'add',
      '--account',
      'acme',
      '--username',
      'alice',
      '--password',
      'x',
      '--db',
      db,
    ]);
    expect(taken.code).not.toBe(0);
    expect(taken.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a second serve on a port in use exits 1 at once, with one line', async () => {
    if (server === undefined) throw new Error('no server');
    const port = new URL(server.url).port;
    const second = await runCli([
      'serve',
      '--port',
      port,
      '--mqtt-port',
      String(await freePort()),
      '--db',
      join(dir, 'other.db'),
    ]);
    expect(second.code).toBe(1);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(second.stderr).toMatch(/EADDRINUSE/);
  });

  it('finishes on SIGTERM with exit status 0', async () => {
    if (server === undefined) throw new Error('no server');
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });
});
