import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JobCreateInput } from '../../../../../jobs/service.js';
import { badRequest } from '../../../../../model/error.js';
import { parseQuery } from '../../../../../query/index.js';
import type { ByQueryResult } from '../../../../../store/store.js';
import { sendByIdResults } from '../../../../by-id.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { refuseBody } from '../../../../errors.js';
import { pageRoutes } from '../../../../listing.js';
import { parseForce, parseJobIds, type RawQuery, single } from '../../../../params.js';
import { JOBS, jobDetailJson } from '../../../../resources.js';
import {
  byIdResults,
  byQueryQuery,
  byQueryResult,
  deleteByQueryQuery,
  describeRoute,
  job,
  jobCreateBody,
  jobDetail,
  jobIdListParams,
} from '../../../../schemas.js';

/** The `query` of a by-query cancel or delete: required, so that nothing is changed by accident. */
export function requiredJobQuery(request: FastifyRequest, action: string) {
  const text = single(request.query as RawQuery, 'query');
  const query = text === undefined ? null : parseQuery(text, 'jobs');
  if (query === null) {
    throw badRequest(
      `A query is required to ${action} jobs by query (to ${action} every job, say query=id > 0)`,
    );
  }
  return query;
}

/** Cancels every matching unfinished job, and logs how many. */
export async function cancelByQuery(
  { jobs }: ApiContext,
  request: FastifyRequest,
  force: boolean,
): Promise<ByQueryResult> {
  const accountId = requestUser(request).account_id;
  const result = await jobs.cancelJobsByQuery(accountId, requiredJobQuery(request, 'cancel'), force);
  if (result.count > 0) request.log.info({ jobs: result.count, account: accountId, force }, 'jobs canceled');
  return result;
}

/** `DELETE …?query=`: deletes every matching finished job. */
export function deleteByQuery({ jobs }: ApiContext, operationId: string, summary: string) {
  return {
    schema: describeRoute(operationId, 'jobs', summary, {
      querystring: deleteByQueryQuery,
      response: { 200: byQueryResult },
    }),
    preValidation: refuseBody,
    handler: async (request: FastifyRequest) =>
      jobs.deleteJobsByQuery(requestUser(request).account_id, requiredJobQuery(request, 'delete')),
  };
}

/** A by-id delete answers the ids deleted. */
export const deletedJobIds = byIdResults(job.properties.id);

/** `/ws/v1/jobs/inventory…`: list (JSON or XML), create, delete by id(s) or query, cancel by query. */
export function jobInventoryRoutes(app: FastifyInstance, context: ApiContext): void {
  const { store, jobs, cursors } = context;
  pageRoutes(
    app,
    '/ws/v1/jobs/inventory',
    { operationId: 'listJobs', tag: 'jobs', summary: 'A page of jobs', item: job },
    (request) => ({
      resource: JOBS,
      cursors,
      scope: { accountId: requestUser(request).account_id },
      fetch: (listRequest) => store.listJobs(listRequest),
      fetchJson: (listRequest) => store.listJobsJson(listRequest),
    }),
  );

  app.post<{ Body: JobCreateInput }>(
    '/ws/v1/jobs/inventory',
    {
      schema: describeRoute('createJob', 'jobs', 'Create a job', {
        body: jobCreateBody,
        response: { 201: jobDetail },
      }),
    },
    async (request, reply) => {
      const user = requestUser(request);
      const job = await jobs.createJob(user.account_id, user.username, request.body);
      request.log.info(
        { job: job.id, job_type: job.job_type, targets: job.target_count, account: user.account_id },
        'job created',
      );
      return reply.status(201).header('Location', `/ws/v1/jobs/${job.id}`).send(jobDetailJson(job));
    },
  );

  // `:id`, as the GET of the same path names it; it takes several ids here.
  app.delete<{ Params: { id: string } }>(
    '/ws/v1/jobs/inventory/:id',
    {
      schema: describeRoute('deleteJobs', 'jobs', 'Delete finished jobs by id', {
        params: jobIdListParams,
        response: { 200: deletedJobIds },
      }),
      preValidation: refuseBody,
    },
    async (request, reply) => {
      const results = await jobs.deleteJobs(requestUser(request).account_id, parseJobIds(request.params.id));
      return sendByIdResults(reply, results, (id) => id);
    },
  );
  app.delete(
    '/ws/v1/jobs/inventory',
    deleteByQuery(context, 'deleteJobsByQuery', 'Delete every matching finished job'),
  );

  const cancelByQuerySchema = {
    schema: describeRoute('cancelJobsByQuery', 'jobs', 'Cancel every matching unfinished job', {
      querystring: byQueryQuery,
      response: { 200: byQueryResult },
    }),
    preValidation: refuseBody,
  };
  app.put('/ws/v1/jobs/inventory/cancel', cancelByQuerySchema, async (request) =>
    cancelByQuery(context, request, parseForce(single(request.query as RawQuery, 'force'))),
  );
}
