import type {
  FastifyError,
  FastifyInstance,
  FastifyReply,
  FastifyRequest,
  FastifySchemaValidationError,
} from 'fastify';
import { DEVICE_SERVICE_FIELDS } from '../model/device.js';
import { AppError, badRequest } from '../model/error.js';
import { isOutOfSpace } from '../store/errors.js';

export const BODY_LIMIT_BYTES = 16 * 1024 * 1024;

export const errorBody = (status: number, message: string) => ({
  error_status: status,
  error_message: message,
});

export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.status(status).type('application/json; charset=utf-8').send(errorBody(status, message));
}

/** Requests whose single-object body was wrapped into a one-item array before validation. */
const wrappedBodies = new WeakSet<FastifyRequest>();

/**
 * Lets a route take one object or an array of them (validated as an array) while validation
 * messages still point into what was sent.
 */
export function wrapSingleBody(request: FastifyRequest, what: string): void {
  if (Array.isArray(request.body)) return;
  if (request.body === null || typeof request.body !== 'object') {
    throw badRequest(`body must be ${what} object or an array of them`);
  }
  request.body = [request.body];
  wrappedBodies.add(request);
}

/** For the routes that take no body: none, or an empty object, else 400 (nothing is ignored silently). */
export async function refuseBody(request: FastifyRequest): Promise<void> {
  const body = request.body;
  if (body === undefined || body === null) return;
  if (typeof body === 'object' && !Array.isArray(body)) {
    const [field] = Object.keys(body);
    if (field === undefined) return;
    throw badRequest(`body: unknown field '${field}' (this route takes no body; parameters go in the URL)`);
  }
  throw badRequest('This route takes no request body; parameters go in the URL');
}

/** `/targets/devices/0` → `body.targets.devices[0]`. */
function location(request: FastifyRequest, context: string, instancePath: string): string {
  let segments = instancePath.split('/').slice(1);
  if (context === 'body' && wrappedBodies.has(request)) segments = segments.slice(1);
  return segments.reduce(
    (path, segment) =>
      /^\d+$/.test(segment)
        ? `${path}[${segment}]`
        : `${path}.${segment.replaceAll('~1', '/').replaceAll('~0', '~')}`,
    context,
  );
}

const SERVICE_FIELDS: ReadonlySet<string> = new Set(DEVICE_SERVICE_FIELDS);

function describe(request: FastifyRequest, context: string, error: FastifySchemaValidationError): string {
  const where = location(request, context, error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      return SERVICE_FIELDS.has(field)
        ? `${where}: '${field}' is set by the service and cannot be written`
        : `${where}: unknown field '${field}'`;
    }
    case 'required':
      return `${where}: missing required field '${String(params.missingProperty)}'`;
    case 'type': {
      // Parameters are typed as text, so only a repeated one (an array) fails.
      if (context === 'querystring')
        return `Parameter '${where.slice(context.length + 1)}' is given more than once`;
      const types = Array.isArray(params.type) ? params.type : String(params.type).split(',');
      return `${where} must be ${types.map((type) => (type === 'integer' ? 'an integer' : type)).join(' or ')}`;
    }
    case 'enum':
      return `${where} must be one of ${(params.allowedValues as unknown[]).join(', ')}`;
    default:
      return `${where} ${error.message ?? 'is invalid'}`;
  }
}

const FASTIFY_MESSAGES: Readonly<Record<string, string>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: `Request body is larger than the limit of ${BODY_LIMIT_BYTES / 1024 / 1024} MiB`,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'Request body length does not match its Content-Length',
};

/** One error answer for everything: `{"error_status", "error_message"}`; 5xx are logged and hidden. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError | AppError | Error, request, reply) => {
    if (error instanceof AppError) {
      if (error.status < 500) return sendError(reply, error.status, error.message);
      request.log.error({ err: error }, 'request failed');
      return sendError(reply, error.status, 'Internal server error');
    }
    const fastifyError = error as FastifyError;
    if (fastifyError.validation !== undefined && fastifyError.validation.length > 0) {
      const context = fastifyError.validationContext ?? 'request';
      const message = fastifyError.validation.map((item) => describe(request, context, item)).join('; ');
      return sendError(reply, 400, message);
    }
    if (isOutOfSpace(error)) {
      request.log.error({ err: error }, 'write failed: the store is out of space (disk full)');
      return sendError(reply, 507, 'the store is out of space');
    }
    const status = fastifyError.statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      return sendError(reply, status, FASTIFY_MESSAGES[fastifyError.code] ?? fastifyError.message);
    }
    request.log.error({ err: error }, 'request failed');
    return sendError(reply, 500, 'Internal server error');
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, `No such route: ${request.method} ${request.url.split('?')[0] ?? ''}`),
  );
}
