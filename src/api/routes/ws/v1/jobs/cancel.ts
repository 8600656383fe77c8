import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendByIdResults } from '../../../../by-id.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { refuseBody } from '../../../../errors.js';
import { parseForce, parseJobIds, type RawQuery, single } from '../../../../params.js';
import { jobJson } from '../../../../resources.js';
import { byIdResults, byQueryQuery, describeRoute, job, jobIdsParams } from '../../../../schemas.js';
import { cancelByQuery, deleteByQuery } from './inventory.js';

/**
 * `PUT /ws/v1/jobs/cancel/{ids}` and, as the reference writes it, `PUT /ws/v1/jobs/cancel{ids}`
 * (no slash); `DELETE /ws/v1/jobs/cancel?query=` deletes by query.
 */
export function jobCancelRoutes(app: FastifyInstance, context: ApiContext): void {
  const { jobs } = context;
  const cancel = async (request: FastifyRequest<{ Params: { ids: string } }>, reply: FastifyReply) => {
    const raw = request.query as RawQuery;
    const force = parseForce(single(raw, 'force'));
    const accountId = requestUser(request).account_id;
    // `PUT /ws/v1/jobs/cancel?query=…` with no ids: the same as the by-query cancel.
    if (request.params.ids === '' && single(raw, 'query') !== undefined) {
      return reply.send(await cancelByQuery(context, request, force));
    }
    const results = await jobs.cancelJobs(accountId, parseJobIds(request.params.ids), force);
    const canceled = results.flatMap((result) => (result.ok ? [result.value.id] : []));
    if (canceled.length > 0) request.log.info({ jobs: canceled, account: accountId, force }, 'jobs canceled');
    return sendByIdResults(reply, results, jobJson);
  };
  const cancelSchema = (operationId: string, summary: string) => ({
    schema: describeRoute(operationId, 'jobs', summary, {
      params: jobIdsParams,
      querystring: byQueryQuery,
      description: 'With no ids and a `query`, cancels every matching unfinished job.',
      response: { 200: byIdResults(job) },
    }),
    preValidation: refuseBody,
  });
  app.put<{ Params: { ids: string } }>(
    '/ws/v1/jobs/cancel/:ids',
    cancelSchema('cancelJobs', 'Cancel jobs by id'),
    cancel,
  );
  app.put<{ Params: { ids: string } }>(
    '/ws/v1/jobs/cancel:ids',
    cancelSchema('cancelJobsNoSlash', 'Cancel jobs by id (the reference spelling, without a slash)'),
    cancel,
  );
  app.delete(
    '/ws/v1/jobs/cancel',
    deleteByQuery(context, 'deleteJobsByQueryCancelPath', 'Delete every matching finished job'),
  );
}
