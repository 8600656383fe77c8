import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../../../../context.js';
import { csvRoute } from '../../../../listing.js';
import { JOBS } from '../../../../resources.js';

/** `GET /ws/v1/jobs/bulk`: every matching job as CSV. */
export function jobBulkRoutes(app: FastifyInstance, { store }: ApiContext): void {
  csvRoute(
    app,
    '/ws/v1/jobs/bulk',
    { operationId: 'exportJobs', tag: 'jobs', summary: 'Every matching job as CSV' },
    JOBS,
    (csvRequest) => store.exportJobs(csvRequest),
  );
}
