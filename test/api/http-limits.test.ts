import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AppOptions, buildApp } from '../../src/api/app.js';
import { JobService } from '../../src/jobs/service.js';
import { hashPassword } from '../../src/security/hashing.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/store.js';

const AUTH = `Basic ${Buffer.from('alice:secret').toString('base64')}`;

/** A listening app (Node's HTTP parser is not on the path of `inject`), with user alice. */
async function listeningApp(options: Pick<AppOptions, 'httpTimeouts'> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'fleetjobs-http-'));
  const store: Store = await openSqliteStore(join(dir, 'fleetjobs.db'));
  const { id: accountId } = await store.ensureAccount('acme', Date.now());
  await store.createUser({
    accountId,
    username: 'alice',
    passwordHash: await hashPassword('secret'),
    role: 'user',
    now: Date.now(),
  });
  const app: FastifyInstance = await buildApp({ store, jobs: new JobService(store), ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('not listening');
  return {
    app,
    port: address.port,
    async close() {
      app.server.closeAllConnections();
      await app.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes `chunks` (spaced by `gapMs`) and collects everything the server answers until it closes. */
function exchange(
  port: number,
  chunks: string[],
  gapMs = 0,
): Promise<{ text: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (data: string) => {
      text += data;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, closedAfterMs: Date.now() - started }));
    let index = 0;
    const writeNext = () => {
      if (socket.destroyed || index >= chunks.length) return;
      socket.write(chunks[index++] as string);
      setTimeout(writeNext, gapMs);
    };
    socket.on('connect', writeNext);
  });
}

/** Status and JSON body of a raw HTTP answer. */
function parseAnswer(text: string): { status: number; contentType: string; body: unknown } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const status = Number(head.split(' ')[1]);
  const contentType = /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? '';
  return { status, contentType, body: JSON.parse(body) };
}

function expectErrorAnswer(text: string, status: number): string {
  const answer = parseAnswer(text);
  expect(answer.status, text).toBe(status);
  expect(answer.contentType).toMatch(/^application\/json/);
  const body = answer.body as { error_status: number; error_message: string };
  expect(Object.keys(body).sort()).toEqual(['error_message', 'error_status']);
  expect(body.error_status).toBe(status);
  return body.error_message;
}

describe("Node's HTTP parser and request heads (§13)", () => {
  let server: Awaited<ReturnType<typeof listeningApp>>;
  beforeAll(async () => {
    server = await listeningApp();
  });
  afterAll(() => server.close());

  it('a malformed request is 400 with the error body, and the connection is closed', async () => {
    const { text } = await exchange(server.port, ['THIS IS NOT HTTP\r\n\r\n']);
    expect(expectErrorAnswer(text, 400)).toMatch(/malformed HTTP request/i);
  });

  it('a header with a bad character is 400 with the error body', async () => {
    const { text } = await exchange(server.port, [
      'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n',
    ]);
    expectErrorAnswer(text, 400);
  });

  it('request heads up to 64 KiB are accepted: a by-id cancel of 1,000 long ids', async () => {
    const ids = Array.from({ length: 1_000 }, (_, index) => 1_000_000_000_000 + index).join(',');
    const filler = 'f'.repeat(40 * 1024);
    const { text } = await exchange(server.port, [
      `PUT /ws/v1/jobs/cancel/${ids} HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nX-Filler: ${filler}\r\nConnection: close\r\n\r\n`,
    ]);
    expect(text.length).toBeGreaterThan(0);
    expect(parseAnswer(text).status, text.slice(0, 300)).not.toBe(431);
    expect(parseAnswer(text).status).toBeLessThan(500);
  });

  it('a head above 64 KiB is 431 with the error body', async () => {
    const { text } = await exchange(server.port, [
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Filler: ${'f'.repeat(70 * 1024)}\r\n\r\n`,
    ]);
    expect(expectErrorAnswer(text, 431)).toMatch(/64 KiB/);
  });
});

describe('request and response timeouts (§13)', () => {
  const timeouts = { requestMs: 600, idleMs: 1_200 };
  let server: Awaited<ReturnType<typeof listeningApp>>;
  beforeAll(async () => {
    server = await listeningApp({ httpTimeouts: timeouts });
  });
  afterAll(() => server.close());

  it('headers that do not all arrive in time are answered 408 and closed', async () => {
    const { text, closedAfterMs } = await exchange(server.port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n']);
    expect(expectErrorAnswer(text, 408)).toMatch(/timeout/i);
    expect(closedAfterMs).toBeLessThan(timeouts.requestMs + 1_000);
  });

  it('a body trickling in byte by byte is cut off with 408', async () => {
    const head = `POST /ws/v1/jobs/inventory HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n`;
    const { text, closedAfterMs } = await exchange(
      server.port,
      [head, ...'{"job_type": "reboot"'.split('')],
      100,
    );
    expectErrorAnswer(text, 408);
    expect(closedAfterMs).toBeLessThan(timeouts.requestMs + 1_000);
  });

  it('a response the client does not read is abandoned and its connection closed', async () => {
    const devices = Array.from({ length: 1_000 }, (_, index) => ({
      id: `00000000-00000000-00000000-${index.toString(16).toUpperCase().padStart(8, '0')}`,
      description: 'd'.repeat(15_000),
    }));
    const created = await server.app.inject({
      method: 'POST',
      url: '/ws/v1/devices/inventory',
      headers: { authorization: AUTH },
      payload: devices,
    });
    expect(created.statusCode).toBe(201);

    const serverSocketClosed = new Promise<number>((resolve) => {
      server.app.server.once('connection', (socket: Socket) => {
        const opened = Date.now();
        socket.on('close', () => resolve(Date.now() - opened));
      });
    });
    const client = connect(server.port, '127.0.0.1');
    client.on('error', () => undefined);
    client.on('connect', () => {
      client.write(`GET /ws/v1/devices/bulk HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\n\r\n`);
      client.pause();
    });
    // 15 MB of CSV fill every socket buffer; then nothing moves for idleMs.
    const closedAfterMs = await serverSocketClosed;
    expect(closedAfterMs).toBeGreaterThanOrEqual(timeouts.idleMs);
    client.destroy();
  }, 30_000);
});
