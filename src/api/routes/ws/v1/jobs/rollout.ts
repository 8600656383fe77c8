import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { parseQuery } from '../../../../../query/index.js';
import { sendByIdResults } from '../../../../by-id.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { refuseBody } from '../../../../errors.js';
import { parseForce, parseJobId, type RawQuery, single } from '../../../../params.js';
import { jobJson } from '../../../../resources.js';
import { byIdResults, describeRoute, job, jobIdParams, targetsChanged } from '../../../../schemas.js';

type JobIdRequest = FastifyRequest<{ Params: { id: string } }>;

const targetQuery = Type.Optional(
  Type.String({
    description:
      "the job's targets to act on (v1 query over target fields, e.g. status = 'failed'); absent: all",
  }),
);

/** The `query` of a by-query change of targets, over target and device fields. */
const parseTargetQuery = (request: FastifyRequest) => {
  const text = single(request.query as RawQuery, 'query');
  return text === undefined ? null : parseQuery(text, 'targets');
};

/**
 * CONTRACT §9: `PUT /ws/v1/jobs/pause/{id}`, `PUT /ws/v1/jobs/resume/{id}` (answered like a cancel
 * by id), and the in-place changes of a job's targets `PUT /ws/v1/jobs/{id}/targets/retry?query=`
 * and `…/targets/cancel?query=[&force=true]` (answered `{count, skipped}`).
 */
export function jobRolloutRoutes(app: FastifyInstance, { jobs }: ApiContext): void {
  for (const [action, summary] of [
    ['pause', 'Pause a job: no new sends, targets in progress run on'],
    ['resume', 'Resume a paused job'],
  ] as const) {
    app.put<{ Params: { id: string } }>(
      `/ws/v1/jobs/${action}/:id`,
      {
        schema: describeRoute(`${action}Job`, 'jobs', summary, {
          params: jobIdParams,
          response: { 200: byIdResults(job) },
        }),
        preValidation: refuseBody,
      },
      async (request: JobIdRequest, reply) => {
        const accountId = requestUser(request).account_id;
        const id = parseJobId(request.params.id);
        const result =
          action === 'pause' ? await jobs.pauseJob(accountId, id) : await jobs.resumeJob(accountId, id);
        if (result.ok) request.log.info({ job: id, account: accountId }, `job ${action}d`);
        return sendByIdResults(reply, [result], jobJson);
      },
    );
  }

  app.put<{ Params: { id: string } }>(
    '/ws/v1/jobs/:id/targets/retry',
    {
      schema: describeRoute(
        'retryJobTargets',
        'jobs',
        "Retry a job's ended targets in place, as their next attempt",
        {
          params: jobIdParams,
          querystring: Type.Object({ query: targetQuery }),
          description:
            'Matching targets that ended failed, timed_out or canceled go back to queued; the job returns to in_progress.',
          response: { 200: targetsChanged },
        },
      ),
      preValidation: refuseBody,
    },
    async (request: JobIdRequest) =>
      jobs.retryTargets(
        requestUser(request).account_id,
        parseJobId(request.params.id),
        parseTargetQuery(request),
      ),
  );

  app.put<{ Params: { id: string } }>(
    '/ws/v1/jobs/:id/targets/cancel',
    {
      schema: describeRoute('cancelJobTargets', 'jobs', "Cancel a job's pending targets", {
        params: jobIdParams,
        querystring: Type.Object({
          query: targetQuery,
          force: Type.Optional(
            Type.String({ description: 'true also cancels targets a device is working on' }),
          ),
        }),
        response: { 200: targetsChanged },
      }),
      preValidation: refuseBody,
    },
    async (request: JobIdRequest) =>
      jobs.cancelTargets(
        requestUser(request).account_id,
        parseJobId(request.params.id),
        parseTargetQuery(request),
        parseForce(single(request.query as RawQuery, 'force')),
      ),
  );
}
