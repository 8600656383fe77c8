import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { describeRoute } from '../schemas.js';

/** `GET /healthz`: 200 without authentication once the service accepts requests. */
export function healthRoutes(app: FastifyInstance): void {
  app.get(
    '/healthz',
    {
      schema: describeRoute('health', 'service', 'Whether the service accepts requests (no credentials)', {
        security: [],
        response: { 200: Type.Object({ status: Type.Literal('ok') }) },
      }),
    },
    async () => ({ status: 'ok' }),
  );
}
