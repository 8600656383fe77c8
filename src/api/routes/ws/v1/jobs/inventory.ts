import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { JobCreateInput } from '../../../../../jobs/service.js';
import { badRequest } from '../../../../../model/error.js';
import { parseQuery } from '../../../../../query/index.js';
import { sendByIdResults } from '../../../../by-id.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { refuseBody } from '../../../../errors.js';
import { pageRoutes } from '../../../../listing.js';
import { parseForce, parseJobIds, type RawQuery, single } from '../../../../params.js';
import { JOBS, jobDetailJson } from '../../../../resources.js';
import { jobCreateBody } from '../../../../schemas.js';

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

/** `DELETE …?query=`: deletes every matching finished job. */
export function deleteByQuery({ jobs }: ApiContext) {
  return async (request: FastifyRequest) =>
    jobs.deleteJobsByQuery(requestUser(request).account_id, requiredJobQuery(request, 'delete'));
}

/** `/ws/v1/jobs/inventory…`: list (JSON or XML), create, delete by id(s) or query, cancel by query. */
export function jobInventoryRoutes(app: FastifyInstance, context: ApiContext): void {
  const { store, jobs, cursors } = context;
  pageRoutes(app, '/ws/v1/jobs/inventory', (request) => ({
    resource: JOBS,
    cursors,
    scope: { accountId: requestUser(request).account_id },
    fetch: (listRequest) => store.listJobs(listRequest),
  }));

  app.post<{ Body: JobCreateInput }>(
    '/ws/v1/jobs/inventory',
    { schema: { body: jobCreateBody } },
    async (request, reply) => {
      const user = requestUser(request);
      const job = await jobs.createJob(user.account_id, user.username, request.body);
      return reply.status(201).header('Location', `/ws/v1/jobs/${job.id}`).send(jobDetailJson(job));
    },
  );

  app.delete<{ Params: { ids: string } }>(
    '/ws/v1/jobs/inventory/:ids',
    { preValidation: refuseBody },
    async (request, reply) => {
      const results = await jobs.deleteJobs(requestUser(request).account_id, parseJobIds(request.params.ids));
      return sendByIdResults(reply, results, (id) => id);
    },
  );
  app.delete('/ws/v1/jobs/inventory', { preValidation: refuseBody }, deleteByQuery(context));

  app.put('/ws/v1/jobs/inventory/cancel', { preValidation: refuseBody }, async (request) =>
    jobs.cancelJobsByQuery(
      requestUser(request).account_id,
      requiredJobQuery(request, 'cancel'),
      parseForce(single(request.query as RawQuery, 'force')),
    ),
  );
}
