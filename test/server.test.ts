import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from '../src/server.js';

const CLIENTS = 20;

/** Everything `socket` receives until the server closes it (an error: what was received so far, and the error's code). */
function readToEnd(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', (error: NodeJS.ErrnoException) => resolve(`${text}[${error.code}]`));
    socket.on('close', () => resolve(text));
  });
}

describe('shutdown', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fleetjobs-server-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('answers the requests clients sent before it, even those the event loop had not read yet', async () => {
    const server = await startServer({
      db: join(dir, 'fleet.db'),
      host: '127.0.0.1',
      port: 0,
      mqttPort: 0,
      logger: pino({ level: 'silent' }),
    });
    const { hostname, port } = new URL(server.url);
    const sockets = await Promise.all(
      Array.from(
        { length: CLIENTS },
        () =>
          new Promise<Socket>((resolve, reject) => {
            const socket = connect(Number(port), hostname, () => resolve(socket));
            socket.once('error', reject);
          }),
      ),
    );
    // The connections are taken by the server's event loop before the requests are sent.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const answers = sockets.map(readToEnd);
    for (const socket of sockets) socket.write(`GET /healthz HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
    // The shutdown begins in the same turn of the event loop: none of the requests is read yet.
    const closed = server.close();
    for (const answer of await Promise.all(answers)) expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    await closed;
  });
});
