import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../../../../context.js';
import { csvRoute } from '../../../../listing.js';
import { DEVICES } from '../../../../resources.js';

/** `GET /ws/v1/devices/bulk`: every matching device as CSV. */
export function deviceBulkRoutes(app: FastifyInstance, { store }: ApiContext): void {
  csvRoute(
    app,
    '/ws/v1/devices/bulk',
    { operationId: 'exportDevices', tag: 'devices', summary: 'Every matching device as CSV' },
    DEVICES,
    (csvRequest) => store.exportDevices(csvRequest),
  );
}
