import { readFileSync } from 'node:fs';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { describeRoute } from './schemas.js';

/** src/api/ and dist/api/ are both two levels below the package root. */
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

/**
 * Collects every route's schema into an OpenAPI 3.1 document; registered before the routes, so
 * that the document holds every one of them (but those with `hide: true`, like static files).
 */
export async function collectOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'fleetjobs',
        version: VERSION,
        description:
          'Jobs on fleets of IoT devices, with the Digi Remote Manager v1/jobs API. Errors answer ' +
          '{"error_status", "error_message"}.',
      },
      tags: [
        { name: 'jobs', description: 'jobs and their targets' },
        { name: 'devices', description: 'the device inventory' },
        { name: 'groups', description: "the groups of the devices' paths" },
        { name: 'sci', description: "Remote Manager's SCI job requests (XML)" },
        { name: 'monitors', description: 'monitors that push events, their history, the live event stream' },
        { name: 'service', description: 'health, metrics, this document (no credentials), the v1 index' },
      ],
      components: {
        securitySchemes: {
          basic: { type: 'http', scheme: 'basic' },
          apiKeyId: { type: 'apiKey', in: 'header', name: 'X-API-KEY-ID' },
          apiKeySecret: { type: 'apiKey', in: 'header', name: 'X-API-KEY-SECRET' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'the --metrics-token, when set' },
        },
      },
      security: [{ basic: [] }, { apiKeyId: [], apiKeySecret: [] }],
    },
  });
}

/** `GET /ws/v1/openapi.json` and the documentation page `GET /ws/v1/docs`, open without credentials. */
export async function openApiRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    '/ws/v1/openapi.json',
    {
      schema: describeRoute('getOpenApi', 'service', 'This OpenAPI document', {
        security: [],
        response: { 200: Type.Object({ openapi: Type.String() }, { additionalProperties: true }) },
      }),
    },
    async () => app.swagger(),
  );
  // Swagger UI's own files, served from node_modules: nothing comes from another host.
  await app.register(swaggerUi, { routePrefix: '/ws/v1/docs' });
}
