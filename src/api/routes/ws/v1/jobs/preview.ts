// The schema keys of OpenAPI (operationId, tags, summary, hide) come with @fastify/swagger's types.
import type {} from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import type { JobCreateInput } from '../../../../../jobs/service.js';
import { type ApiContext, requestUser } from '../../../../context.js';
import { jobCreateBody } from '../../../../schemas.js';

const targetPreview = Type.Object({
  target_count: Type.Integer({ description: 'devices the job would target' }),
  list: Type.Array(Type.String(), { description: 'the first (at most 1000) device ids, ascending' }),
  offline: Type.Integer({ description: 'of those devices, how many are not connected now' }),
});

/** `POST /ws/v1/jobs/preview`: the targets a create body resolves to, checked as a creation; creates nothing. */
export function jobPreviewRoutes(app: FastifyInstance, { jobs }: ApiContext): void {
  app.post<{ Body: JobCreateInput }>(
    '/ws/v1/jobs/preview',
    {
      schema: {
        operationId: 'previewJob',
        tags: ['jobs'],
        summary: 'Resolve the targets of a job body without creating the job',
        body: jobCreateBody,
        response: { 200: targetPreview },
      },
    },
    async (request) => jobs.previewJob(requestUser(request).account_id, request.body),
  );
}
