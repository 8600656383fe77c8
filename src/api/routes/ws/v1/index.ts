import type { FastifyInstance } from 'fastify';
import { type Authenticator, authHook } from '../../../auth.js';
import type { ApiContext } from '../../../context.js';
import { deviceBulkRoutes } from './devices/bulk.js';
import { deviceRoutes } from './devices/index.js';
import { deviceInventoryRoutes } from './devices/inventory.js';
import { EVENT_STREAM_TIMINGS, type EventStreamTimings, eventRoutes } from './events.js';
import { jobBulkRoutes } from './jobs/bulk.js';
import { jobCancelRoutes } from './jobs/cancel.js';
import { jobRoutes } from './jobs/index.js';
import { jobInventoryRoutes } from './jobs/inventory.js';
import { jobPreviewRoutes } from './jobs/preview.js';
import { jobTargetRoutes } from './jobs/targets.js';
import { monitorRoutes } from './monitors.js';

/** Every `/ws/v1/` route, behind authentication. */
export function v1Routes(
  authenticator: Authenticator,
  context: ApiContext,
  eventTimings: EventStreamTimings = EVENT_STREAM_TIMINGS,
) {
  return async (app: FastifyInstance): Promise<void> => {
    app.addHook('onRequest', authHook(authenticator));
    jobRoutes(app, context);
    jobInventoryRoutes(app, context);
    jobBulkRoutes(app, context);
    jobCancelRoutes(app, context);
    jobPreviewRoutes(app, context);
    jobTargetRoutes(app, context);
    deviceRoutes(app);
    deviceInventoryRoutes(app, context);
    deviceBulkRoutes(app, context);
    monitorRoutes(app, context);
    eventRoutes(app, context, eventTimings);
  };
}
