import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../process.js';
import { runCli, type Server, startServer } from './harness.js';

let server: Server;
beforeAll(async () => {
  server = await startServer();
});
afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

function oneLine(text: string): void {
  const t = text.trim();
  expect(t.length).toBeGreaterThan(0);
  expect(t.split('\n')).toHaveLength(1);
}

describe('§1 bin/fleetjobs', () => {
  it('is the package bin, an executable that runs directly', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    const bin = typeof pkg.bin === 'string' ? pkg.bin : pkg.bin?.fleetjobs;
    expect(bin?.replace(/^\.\//, '')).toBe('bin/fleetjobs');
    expect(statSync(join(ROOT, 'bin', 'fleetjobs')).mode & 0o111).not.toBe(0);
    const { stdout } = await promisify(execFile)(join(ROOT, 'bin', 'fleetjobs'), [
      'user',
      'list',
      '--db',
      server.db,
    ]);
    expect(Array.isArray(JSON.parse(stdout)) || typeof JSON.parse(stdout) === 'object').toBe(true);
  });
});

describe('§1 fleetjobs user', () => {
  it('user add with --password prints the user as JSON, default role user, and the user can log in', async () => {
    const r = await server.userAdd('acme', 'alice', 'pa55');
    expect(r.code).toBe(0);
    const user = JSON.parse(r.stdout);
    expect(user.username).toBe('alice');
    expect(user.role).toBe('user');
    const ok = await server.get('/ws/v1/jobs', { auth: { user: 'alice', password: 'pa55' } });
    expect(ok.status).toBe(200);
  });

  it('user add without --password reads one line from standard input', async () => {
    const r = await server.cli(
      ['user', 'add', '--account', 'acme', '--username', 'stdin-user'],
      'from stdin\n',
    );
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).username).toBe('stdin-user');
    const ok = await server.get('/ws/v1/jobs', { auth: { user: 'stdin-user', password: 'from stdin' } });
    expect(ok.status).toBe(200);
  });

  it('accepts the roles admin and read_only and prints them', async () => {
    for (const role of ['admin', 'read_only']) {
      const r = await server.userAdd('acme', `role-${role}`, 'x', '--role', role);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).role).toBe(role);
    }
  });

  it('a taken username (also in another account) exits non-zero with a one-line reason', async () => {
    await server.user('acme', 'taken');
    for (const account of ['acme', 'other-account']) {
      const r = await server.userAdd(account, 'taken', 'y');
      expect(r.code).not.toBe(0);
      oneLine(r.stdout + r.stderr);
    }
    // the original password still works
    const ok = await server.get('/ws/v1/jobs', { auth: { user: 'taken', password: 'pw-taken-secret' } });
    expect(ok.status).toBe(200);
  });

  it('a bad role exits non-zero with a one-line reason', async () => {
    const r = await server.userAdd('acme', 'badrole', 'x', '--role', 'superuser');
    expect(r.code).not.toBe(0);
    oneLine(r.stdout + r.stderr);
  });

  it('a password may contain a colon (Basic splits at the first one)', async () => {
    const r = await server.userAdd('acme', 'colon', 'a:b:c');
    expect(r.code).toBe(0);
    expect((await server.get('/ws/v1/jobs', { auth: { user: 'colon', password: 'a:b:c' } })).status).toBe(
      200,
    );
    expect((await server.get('/ws/v1/jobs', { auth: { user: 'colon', password: 'a' } })).status).toBe(401);
  });

  it('a missing required argument exits non-zero with a one-line reason', async () => {
    const r = await server.cli(['user', 'add', '--username', 'no-account', '--password', 'x']);
    expect(r.code).not.toBe(0);
    oneLine(r.stdout + r.stderr);
    const gone = await server.get('/ws/v1/jobs', { auth: { user: 'no-account', password: 'x' } });
    expect(gone.status).toBe(401);
  });

  it('user list (optionally by account) and user remove', async () => {
    await server.user('listed-acct', 'listed');
    const all = await server.cli(['user', 'list']);
    expect(all.code).toBe(0);
    expect(all.stdout).toContain('listed');
    const one = await server.cli(['user', 'list', '--account', 'listed-acct']);
    expect(one.code).toBe(0);
    expect(one.stdout).toContain('listed');
    expect(one.stdout).not.toContain('alice');
    const rm = await server.cli(['user', 'remove', '--username', 'listed']);
    expect(rm.code).toBe(0);
    const gone = await server.get('/ws/v1/jobs', { auth: { user: 'listed', password: 'pw-listed-secret' } });
    expect(gone.status).toBe(401);
  });
});

describe('§1 fleetjobs apikey', () => {
  it('add prints {id, secret}; the key works; list shows ids, never secrets; revoke stops it at once', async () => {
    await server.user('keys', 'keyuser');
    const add = await server.cli(['apikey', 'add', '--username', 'keyuser']);
    expect(add.code).toBe(0);
    const key = JSON.parse(add.stdout);
    expect(typeof key.id).toBe('string');
    expect(typeof key.secret).toBe('string');
    expect(key.secret.length).toBeGreaterThan(0);

    const auth = { keyId: key.id, keySecret: key.secret };
    expect((await server.get('/ws/v1/devices/inventory', { auth })).status).toBe(200);

    const list = await server.cli(['apikey', 'list', '--username', 'keyuser']);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(key.id);
    expect(list.stdout).not.toContain(key.secret);

    // stored only as a hash
    expect(server.storeBytes()).not.toContain(key.secret);

    const revoke = await server.cli(['apikey', 'revoke', key.id]);
    expect(revoke.code).toBe(0);
    const after = await server.get('/ws/v1/devices/inventory', { auth });
    expect(after.status).toBe(401);
    expect(after.body).toEqual({ error_status: 401, error_message: expect.any(String) });
  });

  it('a second key is independent and has a different secret', async () => {
    await server.user('keys2', 'keyuser2');
    const a = JSON.parse((await server.cli(['apikey', 'add', '--username', 'keyuser2'])).stdout);
    const b = JSON.parse((await server.cli(['apikey', 'add', '--username', 'keyuser2'])).stdout);
    expect(a.id).not.toBe(b.id);
    expect(a.secret).not.toBe(b.secret);
    expect((await server.get('/ws/v1/jobs', { auth: { keyId: a.id, keySecret: b.secret } })).status).toBe(
      401,
    );
    expect((await server.get('/ws/v1/jobs', { auth: { keyId: b.id, keySecret: b.secret } })).status).toBe(
      200,
    );
  });
});

describe('§1 serve', () => {
  it('takes FLEETJOBS_PORT / FLEETJOBS_DB / FLEETJOBS_MQTT_PORT, creates the db folder, SIGINT exits 0', async () => {
    const viaEnv = await startServer({ viaEnv: true, dbInSubfolder: true });
    try {
      const env = { FLEETJOBS_DB: viaEnv.db };
      const add = await runCli(
        ['user', 'add', '--account', 'e', '--username', 'envuser', '--password', 'p'],
        undefined,
        env,
      );
      expect(add.code).toBe(0);
      const ok = await viaEnv.get('/ws/v1/jobs', { auth: { user: 'envuser', password: 'p' } });
      expect(ok.status).toBe(200);
      const list = await runCli(['user', 'list'], undefined, env);
      expect(list.stdout).toContain('envuser');
    } finally {
      expect(await viaEnv.stop('SIGINT')).toBe(0);
    }
  });

  it('the CLI works on the db of a running server and the server sees its changes at once', async () => {
    await server.user('live', 'live-user');
    const key = JSON.parse((await server.cli(['apikey', 'add', '--username', 'live-user'])).stdout);
    expect((await server.get('/ws/v1/jobs', { auth: { keyId: key.id, keySecret: key.secret } })).status).toBe(
      200,
    );
  });
});
