import type { FastifyInstance } from 'fastify';
import { type Authenticator, authHook } from '../../../auth.js';
import type { ApiContext } from '../../../context.js';
import { apiIndex, describeRoute } from '../../../schemas.js';
import { deviceBulkRoutes } from './devices/bulk.js';
import { deviceRoutes } from './devices/index.js';
import { deviceInventoryRoutes } from './devices/inventory.js';
import { EVENT_STREAM_TIMINGS, type EventStreamTimings, eventRoutes } from './events.js';
import { groupRoutes } from './groups/index.js';
import { groupInventoryRoutes } from './groups/inventory.js';
import { jobBulkRoutes } from './jobs/bulk.js';
import { jobCancelRoutes } from './jobs/cancel.js';
import { jobRoutes } from './jobs/index.js';
import { jobInventoryRoutes } from './jobs/inventory.js';
import { jobPreviewRoutes } from './jobs/preview.js';
import { jobRolloutRoutes } from './jobs/rollout.js';
import { jobTargetRoutes } from './jobs/targets.js';
import { monitorRoutes } from './monitors.js';

/** The v1 APIs this service has, as `GET /ws/v1` lists them. */
export const V1_APIS = ['devices', 'groups', 'jobs', 'monitors'] as const;

const V1_INDEX = {
  count: V1_APIS.length,
  list: V1_APIS.map((name) => ({ name, uri: `/ws/v1/${name}` })),
};

/** Every `/ws/v1/` route, behind authentication. */
export function v1Routes(
  authenticator: Authenticator,
  context: ApiContext,
  eventTimings: EventStreamTimings = EVENT_STREAM_TIMINGS,
) {
  return async (app: FastifyInstance): Promise<void> => {
    app.addHook('onRequest', authHook(authenticator));
    app.get(
      '/ws/v1',
      {
        schema: describeRoute('apiIndex', 'service', 'The v1 APIs of this service', {
          response: { 200: apiIndex },
        }),
      },
      async () => V1_INDEX,
    );
    jobRoutes(app, context);
    jobInventoryRoutes(app, context);
    jobBulkRoutes(app, context);
    jobCancelRoutes(app, context);
    jobPreviewRoutes(app, context);
    jobRolloutRoutes(app, context);
    jobTargetRoutes(app, context);
    deviceRoutes(app);
    deviceInventoryRoutes(app, context);
    deviceBulkRoutes(app, context);
    groupRoutes(app);
    groupInventoryRoutes(app, context);
    monitorRoutes(app, context);
    eventRoutes(app, context, eventTimings);
  };
}
