import type { FastifyInstance } from 'fastify';

/** `GET /healthz`: 200 without authentication once the service accepts requests. */
export function healthRoutes(app: FastifyInstance): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
}
