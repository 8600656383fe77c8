import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../../model/error.js';
import type { Metrics } from '../../observability/metrics.js';
import { constantTimeEqual } from '../../security/hashing.js';
import { describeRoute } from '../schemas.js';

/** `Authorization: Bearer <token>`, compared in constant time. */
function checkBearer(request: FastifyRequest, token: string): void {
  const [scheme = '', given = ''] = (request.headers.authorization ?? '').trim().split(/\s+/);
  const expected = Buffer.from(token);
  if (scheme.toLowerCase() !== 'bearer' || !constantTimeEqual(Buffer.from(given), expected)) {
    throw new AppError(401, 'Metrics need Authorization: Bearer <the metrics token>');
  }
}

/**
 * The request metrics of every route, and `GET /metrics` (Prometheus text format): open, or behind
 * a bearer token when one is configured.
 */
export function metricsRoutes(app: FastifyInstance, metrics: Metrics, token: string | undefined): void {
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      // The template (`/ws/v1/jobs/:id`), never the raw URL; an unknown route has none.
      route: request.routeOptions.url ?? 'unmatched',
      status: String(reply.statusCode),
    };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, reply.elapsedTime / 1000);
  });
  app.get(
    '/metrics',
    {
      schema: describeRoute('getMetrics', 'service', 'Prometheus metrics', {
        description: 'Open unless the service runs with a metrics token (--metrics-token).',
        security: [{}, { metricsToken: [] }],
        response: {
          200: {
            description: 'Prometheus text format',
            content: { 'text/plain': { schema: { type: 'string' } } },
          },
        },
      }),
    },
    async (request, reply) => {
      if (token !== undefined) checkBearer(request, token);
      const text = await metrics.scrape();
      return reply.type(metrics.registry.contentType).send(text);
    },
  );
}
