import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../src/security/hashing.js';
import { type RunningServer, startServer } from '../src/server.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';

/** A self-signed certificate for 127.0.0.1 and localhost, made by openssl for this test. */
function makeCertificate(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

/** An HTTPS request that trusts only the test's certificate. */
function httpsRequest(
  url: string,
  ca: Buffer,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      url,
      { ca, method: options.method ?? 'GET', headers: options.headers },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('TLS: --tls-cert and --tls-key', () => {
  let dir: string;
  let server: RunningServer;
  let ca: Buffer;
  const auth = { authorization: `Basic ${Buffer.from('alice:pass-word-1').toString('base64')}` };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetjobs-tls-'));
    const { cert, key } = makeCertificate(dir);
    ca = readFileSync(cert);
    const db = join(dir, 'fleetjobs.db');
    const store = await openSqliteStore(db);
    const { id: accountId } = await store.ensureAccount('acme', Date.now());
    await store.createUser({
      accountId,
      username: 'alice',
      passwordHash: await hashPassword('pass-word-1'),
      role: 'user',
      now: Date.now(),
    });
    await store.close();
    server = await startServer({
      db,
      host: '127.0.0.1',
      port: 0,
      mqttPort: 0,
      mqttsPort: 0,
      tlsCert: cert,
      tlsKey: key,
      logger: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the API over HTTPS', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(await httpsRequest(`${server.url}/healthz`, ca)).toEqual({ status: 200, body: '{"status":"ok"}' });
    const jobs = await httpsRequest(`${server.url}/ws/v1/jobs/inventory`, ca, { headers: auth });
    expect(jobs.status).toBe(200);
  });

  it('refuses plain HTTP on the HTTPS port', async () => {
    const plain = await fetch(`${server.url.replace('https:', 'http:')}/healthz`).then(
      (response) => response.status,
      () => 'refused',
    );
    expect(plain).not.toBe(200);
  });

  it('lets a device log in over MQTT with TLS on the mqtts port, and refuses a wrong token there', async () => {
    const id = '00000000-00000000-00000000-0000000A';
    const created = await httpsRequest(`${server.url}/ws/v1/devices/inventory`, ca, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ id }),
    });
    expect(created.status).toBe(201);
    const token = (JSON.parse(created.body) as { list: { device_token: string }[] }).list[0]?.device_token;
    expect(server.mqttsPort).toEqual(expect.any(Number));
    const url = `mqtts://127.0.0.1:${server.mqttsPort}`;
    const client = await mqtt.connectAsync(url, {
      ca,
      clientId: id,
      username: id,
      password: token,
      reconnectPeriod: 0,
    });
    expect(client.connected).toBe(true);
    await client.endAsync();
    await expect(
      mqtt.connectAsync(url, { ca, clientId: id, username: id, password: 'wrong', reconnectPeriod: 0 }),
    ).rejects.toThrow(/Bad username or password/i);
  });
});
