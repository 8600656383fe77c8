import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleRoutes } from '../../src/api/routes/console.js';
import { expectError, Harness } from './harness.js';

describe('the console files at GET /', () => {
  let h: Harness;

  beforeAll(async () => {
    h = await Harness.start();
  });
  afterAll(() => h.close());

  it('serves the built console without credentials, with a policy that allows nothing from another host', async () => {
    const response = await h.get(null, '/');
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/html/);
    expect(response.headers['content-security-policy']).toContain("default-src 'self'");
    expect(response.headers['cache-control']).toBe('no-cache');
    const assets = [...response.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '');
    expect(assets.filter((asset) => asset.startsWith('/assets/'))).toHaveLength(2);
    expect(assets.filter((asset) => !/^\/[^/]|^data:/.test(asset))).toEqual([]);
    for (const asset of assets.filter((path) => path.startsWith('/assets/'))) {
      const file = await h.get(null, asset);
      expect(file.statusCode).toBe(200);
      expect(file.headers['cache-control']).toContain('immutable');
    }
  });

  it('leaves the API as it was: unknown paths are 404 error bodies, /ws/ still needs credentials', async () => {
    expectError(await h.get(null, '/nothing-here'), 404);
    expectError(await h.get(null, '/ws/v1/jobs'), 401);
  });

  it('does not challenge a script that says it handles a 401 itself (no browser login dialog over the form)', async () => {
    const wrong = { authorization: `Basic ${Buffer.from('nobody:wrong').toString('base64')}` };
    const challenged = await h.get(null, '/ws/v1/jobs', wrong);
    expectError(challenged, 401);
    expect(challenged.headers['www-authenticate']).toBe('Basic realm="fleetjobs"');
    const fromConsole = await h.get(null, '/ws/v1/jobs', {
      ...wrong,
      'x-requested-with': 'fleetjobs-console',
    });
    expectError(fromConsole, 401);
    expect(fromConsole.headers['www-authenticate']).toBeUndefined();
  });

  it('answers 503 with what to do when the console was not built', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'fleetjobs-no-console-'));
    const app = Fastify();
    await consoleRoutes(app, `${empty}/`);
    const response = await app.inject({ method: 'GET', url: '/' });
    expect(response.statusCode).toBe(503);
    expect(response.json().error_message).toMatch(/not built.*npm run build/);
    await app.close();
    rmSync(empty, { recursive: true, force: true });
  });
});
