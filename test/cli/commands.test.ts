import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, runNode } from '../process.js';
import { newPostgresDatabase } from '../setup/databases.js';

/** Runs the CLI from source (the built bin/fleetjobs is driven by the acceptance test). */
const fleetjobs = (args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) =>
  runNode(['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), ...args], options.stdin ?? '', options.env);

const oneLine = (text: string) => text.trim().split('\n').length === 1;

describe('fleetjobs user and apikey commands', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-cli-'));
  const db = join(dir, 'nested', 'fleetjobs.db');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('user add reads the password from stdin, creates the account and its folder, prints the user', async () => {
    const result = await fleetjobs(
      ['user', 'add', '--account', 'acme', '--username', 'alice', '--role', 'admin', '--db', db],
      {
        stdin: 'a password\n',
      },
    );
    expect(result.code, result.stderr).toBe(0);
    const user = JSON.parse(result.stdout);
    expect(user).toMatchObject({ username: 'alice', role: 'admin', account_name: 'acme' });
    expect(user.created_at).toMatch(/Z$/);
    expect(result.stdout).not.toContain('a password');
  });

  it('user add takes --password and FLEETJOBS_DB, and defaults to the user role', async () => {
    const result = await fleetjobs(
      ['user', 'add', '--account', 'acme', '--username', 'bob', '--password', 'pw'],
      {
        env: { FLEETJOBS_DB: db },
      },
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ username: 'bob', role: 'user' });
  });

  it.each([
    ['a taken username', ['--account', 'other', '--username', 'alice', '--password', 'x'], /taken/],
    ['a bad role', ['--account', 'acme', '--username', 'carol', '--password', 'x', '--role', 'root'], /role/],
    ['a colon in the username', ['--account', 'acme', '--username', 'ca:rol', '--password', 'x'], /colon/],
    ['no password on stdin', ['--account', 'acme', '--username', 'carol'], /password/],
    ['a missing --account', ['--username', 'carol', '--password', 'x'], /account/],
  ])('user add refuses %s with one line and a non-zero exit', async (_name, args, reason) => {
    const result = await fleetjobs(['user', 'add', ...args, '--db', db]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(reason);
    expect(oneLine(result.stderr)).toBe(true);
    expect(result.stdout).toBe('');
  });

  it('user list shows users, by account too, and never a password hash', async () => {
    await fleetjobs([
      'user',
      'add',
      '--account',
      'globex',
      '--username',
      'mallory',
      '--password',
      'x',
      '--db',
      db,
    ]);
    const all = await fleetjobs(['user', 'list', '--db', db]);
    expect(
      JSON.parse(all.stdout)
        .map((user: { username: string }) => user.username)
        .sort(),
    ).toEqual(['alice', 'bob', 'mallory']);
    expect(all.stdout).not.toMatch(/scrypt|password/);
    const acme = await fleetjobs(['user', 'list', '--account', 'globex', '--db', db]);
    expect(JSON.parse(acme.stdout).map((user: { username: string }) => user.username)).toEqual(['mallory']);
  });

  it('apikey add prints id and secret once; list shows ids only; revoke removes it', async () => {
    const added = await fleetjobs(['apikey', 'add', '--username', 'alice', '--db', db]);
    expect(added.code, added.stderr).toBe(0);
    const key = JSON.parse(added.stdout);
    expect(Object.keys(key)).toEqual(['id', 'secret']);
    const listed = await fleetjobs(['apikey', 'list', '--username', 'alice', '--db', db]);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: key.id, username: 'alice' })]);
    expect(listed.stdout).not.toContain(key.secret);
    expect((await fleetjobs(['apikey', 'revoke', key.id, '--db', db])).code).toBe(0);
    const again = await fleetjobs(['apikey', 'revoke', key.id, '--db', db]);
    expect(again.code).not.toBe(0);
    expect(oneLine(again.stderr)).toBe(true);
    expect(
      JSON.parse((await fleetjobs(['apikey', 'list', '--username', 'alice', '--db', db])).stdout),
    ).toEqual([]);
    expect((await fleetjobs(['apikey', 'add', '--username', 'nobody', '--db', db])).code).not.toBe(0);
  });

  it('user remove removes the user; an unknown one is an error', async () => {
    expect((await fleetjobs(['user', 'remove', '--username', 'bob', '--db', db])).code).toBe(0);
    const again = await fleetjobs(['user', 'remove', '--username', 'bob', '--db', db]);
    expect(again.code).not.toBe(0);
    expect(oneLine(again.stderr)).toBe(true);
  });

  it('--database-url and FLEETJOBS_DATABASE_URL put the users in PostgreSQL', async () => {
    const url = await newPostgresDatabase();
    const added = await fleetjobs([
      'user',
      'add',
      '--account',
      'acme',
      '--username',
      'carol',
      '--password',
      'pw',
      '--database-url',
      url,
    ]);
    expect(added.code, added.stderr).toBe(0);
    const listed = await fleetjobs(['user', 'list'], { env: { FLEETJOBS_DATABASE_URL: url } });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout)).toMatchObject([{ username: 'carol', account_name: 'acme' }]);
  });

  it('an unreachable PostgreSQL is one line', async () => {
    const url = new URL(await newPostgresDatabase());
    url.password = 'wrong';
    const result = await fleetjobs(['user', 'list', '--database-url', url.toString()]);
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr)).toBe(true);
  });
});

describe('fleetjobs simulate and serve, when something is wrong', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const simulate = (args: string[], env: Record<string, string> = {}) =>
    fleetjobs(
      ['simulate', '--username', 'a', '--password', 'b', '--state-file', join(dir, 's.json'), ...args],
      {
        env,
      },
    );

  it('says in one line which number is bad', async () => {
    for (const [args, message] of [
      [['--count', 'abc'], '--count must be a whole number from 1 to 100000'],
      [['--fail-rate', '2'], '--fail-rate must be a number from 0 to 1'],
      [['--latency', '-5'], '--latency must be a number from 0 to'],
    ] as const) {
      const result = await simulate([...args]);
      expect(result.code).not.toBe(0);
      expect(oneLine(result.stderr), result.stderr).toBe(true);
      expect(result.stderr).toContain(message);
    }
  });

  it('finds the service on FLEETJOBS_PORT, and names the URL and the reason when it is not there', async () => {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    const result = await simulate([], { FLEETJOBS_PORT: String(port) });
    expect(result.code).toBe(1);
    expect(oneLine(result.stderr), result.stderr).toBe(true);
    expect(result.stderr).toContain(
      `cannot reach fleetjobs at http://127.0.0.1:${port}: connect ECONNREFUSED`,
    );
  });

  it('names --port and FLEETJOBS_PORT when the HTTP port is taken', async () => {
    const taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
    const { port } = taken.address() as AddressInfo;
    try {
      const result = await fleetjobs(
        ['serve', '--db', join(dir, 'x.db'), '--port', String(port), '--mqtt-port', '0'],
        {
          env: { FLEETJOBS_LOG_LEVEL: 'silent' },
        },
      );
      expect(result.code).toBe(1);
      expect(result.stderr.trim()).toBe(
        `fleetjobs: HTTP port ${port} is already in use (EADDRINUSE: another fleetjobs, or another program): choose another with --port or FLEETJOBS_PORT`,
      );
    } finally {
      taken.close();
    }
  });
});
