import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/** An incoming `X-Request-Id` that is safe to log and echo; anything else gets a new id. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** The request id: the client's `X-Request-Id` when it is sane, else a new UUID. */
export function requestId(request: { headers: FastifyRequest['headers'] }): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
}

/**
 * Every answer carries its request id in `X-Request-Id`, and every request is one log line:
 * method, route template, status, duration, account and the request id (bound by fastify).
 */
export function requestLogging(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? null,
        url: request.routeOptions.url === undefined ? request.url.split('?')[0] : undefined,
        status: reply.statusCode,
        duration_ms: Math.round(reply.elapsedTime * 1000) / 1000,
        account: request.user?.account_id ?? null,
        username: request.user?.username ?? null,
      },
      'request',
    );
  });
}
