import type { FastifyInstance } from 'fastify';
import { type ApiContext, requestUser } from '../../../../context.js';
import { sendCsv } from '../../../../listing.js';
import { JOBS } from '../../../../resources.js';

/** `GET /ws/v1/jobs/bulk`: every matching job as CSV. */
export function jobBulkRoutes(app: FastifyInstance, { store }: ApiContext): void {
  app.get('/ws/v1/jobs/bulk', async (request, reply) =>
    sendCsv(request, reply, {
      resource: JOBS,
      accountId: requestUser(request).account_id,
      stream: (streamRequest) => store.streamJobs(streamRequest),
    }),
  );
}
