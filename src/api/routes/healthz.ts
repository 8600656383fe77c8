import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { sendError } from '../errors.js';
import { describeRoute, errorBody } from '../schemas.js';

/** Why this node cannot serve now (its store or broker unreachable), or null when it can. */
export type Readiness = () => Promise<string | null>;

/**
 * `GET /healthz`: 200 without authentication once the service accepts requests. `GET /readyz`:
 * 200 when this node reaches its store and its broker, else 503 with the reason (CONTRACT §8).
 */
export function healthRoutes(app: FastifyInstance, readiness: Readiness): void {
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
  app.get(
    '/readyz',
    {
      schema: describeRoute(
        'readiness',
        'service',
        'Whether this node reaches its store and its MQTT broker (no credentials); 503 says why not',
        {
          security: [],
          response: { 200: Type.Object({ status: Type.Literal('ready') }), 503: errorBody },
        },
      ),
    },
    async (_request, reply) => {
      const reason = await readiness();
      if (reason !== null) return sendError(reply, 503, `Not ready: ${reason}`);
      return { status: 'ready' };
    },
  );
}
