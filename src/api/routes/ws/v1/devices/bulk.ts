import type { FastifyInstance } from 'fastify';
import { type ApiContext, requestUser } from '../../../../context.js';
import { sendCsv } from '../../../../listing.js';
import { DEVICES } from '../../../../resources.js';

/** `GET /ws/v1/devices/bulk`: every matching device as CSV. */
export function deviceBulkRoutes(app: FastifyInstance, { store }: ApiContext): void {
  app.get('/ws/v1/devices/bulk', async (request, reply) =>
    sendCsv(request, reply, {
      resource: DEVICES,
      accountId: requestUser(request).account_id,
      stream: (streamRequest) => store.streamDevices(streamRequest),
    }),
  );
}
