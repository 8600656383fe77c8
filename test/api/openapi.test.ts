import { Validator } from '@seriousme/openapi-schema-validator';
import type { RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './harness.js';

interface Operation {
  operationId?: string;
  tags?: string[];
  summary?: string;
  security?: unknown[];
}
interface Document {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
}

/** `/ws/v1/jobs/:id` → `/ws/v1/jobs/{id}`, as OpenAPI writes a path. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');

describe('OpenAPI document', () => {
  let h: Harness;
  const routes: RouteOptions[] = [];
  let document: Document;

  beforeAll(async () => {
    h = await Harness.start({ onRoute: (route) => routes.push(route) });
    const response = await h.app.inject({ method: 'GET', url: '/ws/v1/openapi.json' });
    expect(response.statusCode).toBe(200);
    document = response.json<Document>();
  });
  afterAll(() => h.close());

  it('is a valid OpenAPI 3.1 document, served without credentials', async () => {
    expect(document.openapi).toBe('3.1.0');
    const result = await new Validator().validate(
      structuredClone(document) as unknown as Record<string, unknown>,
    );
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes every route fastify registered, except hidden ones (static files)', () => {
    const documented = routes.filter((route) => {
      const schema = route.schema as { hide?: boolean } | undefined;
      // The HEAD routes fastify adds for each GET are documented by the GET; one of its own
      // (it answers otherwise) says so in its config.
      const ownHead = (route.config as { swagger?: { exposeHeadRoute?: boolean } } | undefined)?.swagger
        ?.exposeHeadRoute;
      return schema?.hide !== true && (route.method !== 'HEAD' || ownHead === true);
    });
    expect(documented.length).toBeGreaterThan(20);
    for (const route of documented) {
      for (const method of [route.method].flat()) {
        const operation = document.paths[openApiPath(route.url)]?.[method.toLowerCase()];
        expect(operation, `${method} ${route.url}`).toBeDefined();
      }
    }
    const hidden = routes.filter((route) => (route.schema as { hide?: boolean } | undefined)?.hide === true);
    expect(hidden.map((route) => route.url)).toContain('/ws/v1/docs');
  });

  it('gives every operation a unique operationId, a tag and a summary', () => {
    const operations = Object.values(document.paths).flatMap((methods) => Object.values(methods));
    const ids = operations.map((operation) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const operation of operations) {
      // a HEAD route documented on its own gets `-head` from @fastify/swagger
      expect(operation.operationId).toMatch(/^[a-zA-Z]+(-head)?$/);
      expect(operation.tags?.length).toBe(1);
      expect(operation.summary).toBeTruthy();
    }
  });

  it('describes request bodies with the schemas that validate them', async () => {
    const create = document.paths['/ws/v1/jobs/inventory']?.post as Operation & {
      requestBody: {
        content: Record<string, { schema: { required: string[]; additionalProperties: boolean } }>;
      };
    };
    const schema = create.requestBody.content['application/json']?.schema;
    expect(schema?.required).toEqual(['job_type', 'targets']);
    expect(schema?.additionalProperties).toBe(false);
    // The same schema refuses what the document says it refuses.
    const caller = await h.user('acme', 'alice');
    const response = await h.app.inject({
      method: 'POST',
      url: '/ws/v1/jobs/inventory',
      headers: caller.headers,
      payload: { job_type: 'reboot', targets: { all: true }, color: 'red' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toEqual({ error_status: 400, error_message: "body: unknown field 'color'" });
  });

  it('marks the open routes as needing no credentials, the others as needing them', () => {
    expect(document.paths['/healthz']?.get?.security).toEqual([]);
    expect(document.paths['/ws/v1/openapi.json']?.get?.security).toEqual([]);
    expect(document.paths['/ws/v1/jobs/{id}']?.get?.security).toBeUndefined();
  });

  it('renders the document at /ws/v1/docs from local files', async () => {
    const page = await h.app.inject({ method: 'GET', url: '/ws/v1/docs' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const sources = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1] ?? '');
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(source).not.toMatch(/^(https?:)?\/\//);
      const asset = await h.app.inject({
        method: 'GET',
        url: new URL(source, 'http://x/ws/v1/docs/').pathname,
      });
      expect(asset.statusCode, source).toBe(200);
    }
    const json = await h.app.inject({ method: 'GET', url: '/ws/v1/docs/json' });
    expect(json.json()).toEqual(document);
  });
});
