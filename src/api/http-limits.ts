import { type ServerOptions, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { errorBody } from './errors.js';

/** Request line and headers together: a by-id route with 1,000 ids fits. */
export const MAX_HEADER_BYTES = 64 * 1024;

export interface HttpTimeouts {
  /** A request whose headers and body have not all arrived by then is answered 408 and closed. */
  requestMs: number;
  /** A connection with nothing read or written for that long (a response nobody reads) is closed. */
  idleMs: number;
}

export const HTTP_TIMEOUTS: HttpTimeouts = { requestMs: 30_000, idleMs: 60_000 };

const MESSAGES: Readonly<Record<string, (timeouts: HttpTimeouts) => [number, string]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: ({ requestMs }) => [
    408,
    `Request timeout: the request line, headers and body must arrive within ${requestMs / 1000} s`,
  ],
  HPE_HEADER_OVERFLOW: () => [
    431,
    `Request line and headers are larger than the limit of ${MAX_HEADER_BYTES / 1024} KiB`,
  ],
};

/**
 * The answer to what Node's HTTP parser refuses before fastify sees a request, in the error body
 * of every other answer; then the connection is closed (what follows on it cannot be trusted).
 */
function clientErrorHandler(timeouts: HttpTimeouts) {
  return function handle(this: FastifyInstance, error: Error & { code?: string }, socket: Socket): void {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const [status, message] = MESSAGES[error.code ?? '']?.(timeouts) ?? [
      400,
      `Malformed HTTP request: ${error.message}`,
    ];
    this.log.debug({ err: error }, 'HTTP client error');
    // A response already under way cannot be replaced by an error answer.
    const response = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
    if (socket.writable && response?.headersSent !== true) {
      const body = JSON.stringify(errorBody(status, message));
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy();
  };
}

/** The fastify options that bound request heads and time, and answer parser errors with the error body. */
export function httpLimitOptions(timeouts: HttpTimeouts): {
  http: ServerOptions;
  requestTimeout: number;
  connectionTimeout: number;
  clientErrorHandler: FastifyServerOptions['clientErrorHandler'];
} {
  return {
    http: {
      maxHeaderSize: MAX_HEADER_BYTES,
      headersTimeout: timeouts.requestMs,
      requestTimeout: timeouts.requestMs,
      // Node looks for expired requests this often (30 s by default, which would double the limit).
      connectionsCheckingInterval: Math.min(1_000, timeouts.requestMs / 4),
    },
    requestTimeout: timeouts.requestMs,
    connectionTimeout: timeouts.idleMs,
    clientErrorHandler: clientErrorHandler(timeouts),
  };
}
