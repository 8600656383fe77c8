import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notFound } from '../../../../../model/error.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { csvSchema, pageRoutes, sendCsv } from '../../../../listing.js';
import { parseJobId } from '../../../../params.js';
import { TARGETS } from '../../../../resources.js';
import { jobIdParams, target } from '../../../../schemas.js';

type TargetsRequest = FastifyRequest<{ Params: { id: string } }>;

const jobNotFound = (id: number) => notFound(`Job ${id} not found`);

/** A job's targets: `GET /ws/v1/jobs/{id}/targets` (JSON or XML) and `…/targets/bulk` (CSV). */
export function jobTargetRoutes(app: FastifyInstance, { store, cursors }: ApiContext): void {
  pageRoutes(
    app,
    '/ws/v1/jobs/:id/targets',
    {
      operationId: 'listJobTargets',
      tag: 'jobs',
      summary: "A page of a job's targets, one per device",
      params: jobIdParams,
      item: target,
    },
    (request: TargetsRequest) => {
      const jobId = parseJobId(request.params.id);
      return {
        resource: TARGETS,
        cursors,
        scope: { accountId: requestUser(request).account_id, jobId },
        fetch: async (listRequest) => {
          const targets = await store.listTargets(jobId, listRequest);
          if (targets === undefined) throw jobNotFound(jobId);
          return targets;
        },
      };
    },
  );

  const bulkDoc = {
    operationId: 'exportJobTargets',
    tag: 'jobs',
    summary: 'Every target of a job as CSV',
    params: jobIdParams,
  } as const;
  app.get(
    '/ws/v1/jobs/:id/targets/bulk',
    { schema: csvSchema(bulkDoc) },
    async (request: TargetsRequest, reply) => {
      const jobId = parseJobId(request.params.id);
      const accountId = requestUser(request).account_id;
      if ((await store.getJob(accountId, jobId)) === undefined) throw jobNotFound(jobId);
      return sendCsv(request, reply, {
        resource: TARGETS,
        accountId,
        records: (csvRequest) => store.exportTargets(jobId, csvRequest),
      });
    },
  );
}
