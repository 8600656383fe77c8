import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
  type RouteOptions,
} from 'fastify';
import type { JobService } from '../jobs/service.js';
import { AppError, badRequest } from '../model/error.js';
import { Metrics } from '../observability/metrics.js';
import type { Store } from '../store/store.js';
import { Authenticator } from './auth.js';
import { acceptsXml } from './context.js';
import { CursorCodec } from './cursor.js';
import { BODY_LIMIT_BYTES, installErrorHandling, sendError } from './errors.js';
import { HTTP_TIMEOUTS, type HttpTimeouts, httpLimitOptions } from './http-limits.js';
import { collectOpenApi, openApiRoutes } from './openapi.js';
import { requestId, requestLogging } from './request-log.js';
import { consoleRoutes } from './routes/console.js';
import { healthRoutes, type Readiness } from './routes/healthz.js';
import { metricsRoutes } from './routes/metrics.js';
import { sciRoutes } from './routes/ws/sci.js';
import type { EventStreamTimings } from './routes/ws/v1/events.js';
import { v1Routes } from './routes/ws/v1/index.js';

export interface AppOptions {
  store: Store;
  jobs: JobService;
  /** A pino logger; without one the app logs nothing. */
  logger?: FastifyBaseLogger;
  /** The service's metrics; without them the app keeps its own (for its HTTP series and store gauges). */
  metrics?: Metrics;
  /** When set, `GET /metrics` requires `Authorization: Bearer <token>`. */
  metricsToken?: string | undefined;
  /** A certificate and key (PEM): HTTPS instead of HTTP. */
  https?: { cert: Buffer; key: Buffer } | undefined;
  /** Called with every route as it is registered (a test checks that each is documented). */
  onRoute?: (route: RouteOptions) => void;
  /** The clock of login throttling; Date.now unless a test gives one. */
  now?: () => number;
  /** Request and idle timeouts of the HTTP server (§13); tests shorten them. */
  httpTimeouts?: HttpTimeouts;
  /** How often the live event stream polls and keeps the line open; tests shorten them. */
  eventTimings?: EventStreamTimings;
  /** What `GET /readyz` answers (the node's store and broker); without it, whether the store answers. */
  readiness?: Readiness;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A body as UTF-8 text: other bytes are refused, not silently replaced. */
function bodyText(bytes: Buffer): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw badRequest('Request body is not valid UTF-8');
  }
}

/**
 * JSON bodies: `application/json` or `…+json`, `application/x-www-form-urlencoded` (so `curl -d`
 * works) or no type; an empty body is no body. Body schemas refuse unknown keys, `__proto__` included.
 */
function parseJsonBody(body: string): unknown {
  if (body.trim() === '') return undefined;
  let value: unknown;
  try {
    // Only a `\uD8xx`-style escape can make a lone surrogate; most bodies have none to check.
    value = SURROGATE_ESCAPE.test(body) ? JSON.parse(body, refuseLoneSurrogates) : JSON.parse(body);
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw badRequest(`Request body is not valid JSON: ${(error as Error).message}`);
  }
  return value;
}

type BodyKind = 'json' | 'form' | 'xml' | 'none' | 'other';

/** What a Content-Type header says the body is. */
function bodyKind(header: string | undefined): BodyKind {
  const type = (header ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (type === '') return 'none';
  if (type === 'application/json' || type.endsWith('+json')) return 'json';
  if (type === 'application/x-www-form-urlencoded') return 'form';
  if (type === 'text/xml' || type === 'application/xml' || type.endsWith('+xml')) return 'xml';
  return 'other';
}

const unsupportedType = (request: FastifyRequest, expected: string) =>
  new AppError(
    415,
    `Unsupported Content-Type '${request.headers['content-type'] ?? ''}': this route takes ${expected}`,
  );

const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;
/** With the `u` flag a surrogate pair is one code point: this finds only unpaired halves. */
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** A JSON.parse reviver: text with half a surrogate pair is not Unicode text (nor storable as UTF-8). */
function refuseLoneSurrogates(key: string, value: unknown): unknown {
  if (LONE_SURROGATE.test(key) || (typeof value === 'string' && LONE_SURROGATE.test(value))) {
    throw badRequest(
      'Request body has a string with an unpaired surrogate (\\uD800-\\uDFFF): not Unicode text',
    );
  }
  return value;
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { store, jobs, logger, onRoute, now, httpTimeouts = HTTP_TIMEOUTS } = options;
  const app = Fastify({
    ...(options.https === undefined ? {} : { https: options.https }),
    ...(logger === undefined ? { logger: false } : { loggerInstance: logger }),
    // fastify's own request lines are replaced by one line per request (request-log.ts).
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    genReqId: requestId,
    bodyLimit: BODY_LIMIT_BYTES,
    ...httpLimitOptions(httpTimeouts),
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
  // Responses are sent as the routes build them; their schemas only document them.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  if (onRoute !== undefined) app.addHook('onRoute', onRoute);
  app.decorateRequest('user', null);
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, async (request: FastifyRequest, bytes: Buffer) => {
    const kind = bodyKind(request.headers['content-type']);
    if (acceptsXml(request)) {
      // XML routes (SCI) take an XML type, or an XML body sent by `curl -d` or without a type.
      const body = kind === 'xml' || kind === 'form' || kind === 'none' ? bodyText(bytes) : '';
      if (kind === 'xml' || body.trimStart().startsWith('<')) return body;
      throw unsupportedType(request, 'text/xml or application/xml');
    }
    if (kind === 'json' || kind === 'form' || kind === 'none') return parseJsonBody(bodyText(bytes));
    throw unsupportedType(request, 'application/json');
  });
  installErrorHandling(app);
  requestLogging(app);
  await collectOpenApi(app);

  const context = { store, jobs, cursors: new CursorCodec(await store.secret('cursor')) };
  const metrics = options.metrics ?? new Metrics(() => store.totals());
  if (options.metrics === undefined) app.addHook('onClose', async () => metrics.close());
  metricsRoutes(app, metrics, options.metricsToken);
  healthRoutes(
    app,
    options.readiness ??
      (() =>
        store.ping().then(
          () => null,
          () => 'the store is unreachable',
        )),
  );
  await openApiRoutes(app);
  await consoleRoutes(app);
  const authenticator = new Authenticator(store, now);
  await app.register(v1Routes(authenticator, context, options.eventTimings));
  await app.register(sciRoutes(authenticator, context));
  return app;
}
