import type { FastifyInstance, FastifyRequest } from 'fastify';
import { notFound } from '../../../../../model/error.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { parseJobId } from '../../../../params.js';
import { jobDetailJson } from '../../../../resources.js';
import { describeRoute, jobDetail, jobIdParams, summary } from '../../../../schemas.js';

export const JOBS_SUMMARY = {
  inventory_uri: '/ws/v1/jobs/inventory',
  inventory_xml_uri: '/ws/v1/jobs/inventory.xml',
  bulk_uri: '/ws/v1/jobs/bulk',
  cancel_uri: '/ws/v1/jobs/inventory/cancel',
} as const;

type JobIdRequest = FastifyRequest<{ Params: { id: string } }>;

/** `GET /ws/v1/jobs` (the summary) and one job: `GET /ws/v1/jobs/{id}`, also under `/inventory/`. */
export function jobRoutes(app: FastifyInstance, { store }: ApiContext): void {
  app.get(
    '/ws/v1/jobs',
    {
      schema: describeRoute('jobsSummary', 'jobs', 'Where the job routes are', {
        response: { 200: summary(JOBS_SUMMARY) },
      }),
    },
    async () => JOBS_SUMMARY,
  );

  const getJob = async (request: JobIdRequest) => {
    const jobId = parseJobId(request.params.id);
    const job = await store.getJob(requestUser(request).account_id, jobId);
    if (job === undefined) throw notFound(`Job ${jobId} not found`);
    return jobDetailJson(job);
  };
  const jobSchema = (operationId: string, summaryText: string) => ({
    schema: describeRoute(operationId, 'jobs', summaryText, {
      params: jobIdParams,
      response: { 200: jobDetail },
    }),
  });
  app.get('/ws/v1/jobs/:id', jobSchema('getJob', 'One job, with its payload, timeouts and targets'), getJob);
  app.get(
    '/ws/v1/jobs/inventory/:id',
    jobSchema('getInventoryJob', 'One job (the same as GET /ws/v1/jobs/{id})'),
    getJob,
  );
}
