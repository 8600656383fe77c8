import type { FastifyRequest } from 'fastify';
import type { JobService } from '../jobs/service.js';
import type { User } from '../model/account.js';
import { AppError } from '../model/error.js';
import type { Store } from '../store/store.js';
import type { CursorCodec } from './cursor.js';

/** What every route plugin gets. */
export interface ApiContext {
  store: Store;
  jobs: JobService;
  cursors: CursorCodec;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated user; set by the auth hook on every route under `/ws/`. */
    user: User | null;
  }
  interface FastifyContextConfig {
    /** The route reads an XML body (SCI) instead of JSON. */
    xmlBody?: boolean;
  }
}

/** Whether the request's route reads an XML body. */
export const acceptsXml = (request: FastifyRequest): boolean => request.routeOptions.config.xmlBody === true;

/** The authenticated user of a `/ws/` request. */
export function requestUser(request: FastifyRequest): User {
  if (request.user === null) throw new AppError(500, 'Route reached without authentication');
  return request.user;
}
