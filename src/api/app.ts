import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { JobService } from '../jobs/service.js';
import { badRequest } from '../model/error.js';
import type { Store } from '../store/store.js';
import { Authenticator } from './auth.js';
import { CursorCodec } from './cursor.js';
import { BODY_LIMIT_BYTES, installErrorHandling, sendError } from './errors.js';
import { healthRoutes } from './routes/healthz.js';
import { v1Routes } from './routes/ws/v1/index.js';

export interface AppOptions {
  store: Store;
  jobs: JobService;
  /** A pino logger; without one the app logs nothing. */
  logger?: FastifyBaseLogger;
}

/**
 * Bodies are JSON whatever their Content-Type says (so `curl -d` works); an empty body is no body.
 * Body schemas refuse unknown keys, `__proto__` included.
 */
function parseJsonBody(_request: FastifyRequest, body: string): unknown {
  if (body.trim() === '') return undefined;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (error) {
    throw badRequest(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  return value;
}

export async function buildApp({ store, jobs, logger }: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(logger === undefined ? { logger: false } : { loggerInstance: logger }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 64 * 1024 },
    ajv: {
      customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false },
    },
    // Errors found before routing (a URL that does not decode) get the same error body.
    frameworkErrors: (error, _request, reply) => {
      sendError(
        reply,
        400,
        error.code === 'FST_ERR_BAD_URL' ? 'Malformed URL: it does not decode' : error.message,
      );
    },
  });
  app.decorateRequest('user', null);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    '*',
    { parseAs: 'string' },
    async (request: FastifyRequest, body: string | Buffer) => parseJsonBody(request, body.toString()),
  );
  installErrorHandling(app);

  const context = { store, jobs, cursors: new CursorCodec(await store.secret('cursor')) };
  healthRoutes(app);
  await app.register(v1Routes(new Authenticator(store), context));
  return app;
}
