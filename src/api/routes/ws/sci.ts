import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { waitForJob } from '../../../jobs/wait.js';
import { normalizeDeviceId } from '../../../model/device.js';
import { AppError, badRequest } from '../../../model/error.js';
import { DEVICE_NOT_CONNECTED, type JobDetail, type TargetSelector } from '../../../model/job.js';
import type { Store } from '../../../store/store.js';
import { type Authenticator, authHook } from '../../auth.js';
import { type ApiContext, requestUser } from '../../context.js';
import { preferredFormat } from '../../listing.js';
import { parseJobId } from '../../params.js';
import { describeRoute, jobIdParams } from '../../schemas.js';
import {
  type DeviceReply,
  jobIdReply,
  jobStatusReply,
  operationReply,
  renderSci,
  sciErrorReply,
  sciReply,
  targetReply,
  unknownDeviceReply,
} from '../../sci/reply.js';
import { parseSciRequest, type ReplyMode, type SciRequest } from '../../sci/request.js';
import type { XmlObject } from '../../sci/xml.js';

/** An SCI request is XML naming its targets and a payload of at most 64 KiB: 1 MiB is plenty. */
const SCI_BODY_LIMIT_BYTES = 1024 * 1024;

type JobIdRequest = FastifyRequest<{ Params: { id: string } }>;

/** XML, or the same as JSON when the client asks for it (`Accept: application/json`). */
function sendSci(request: FastifyRequest, reply: FastifyReply, status: number, content: XmlObject) {
  const { contentType, body } = renderSci(content, preferredFormat(request) === 'json');
  return reply.status(status).type(contentType).send(body);
}

/** A request SCI refuses (4xx AppError) answers the SCI error reply; anything else goes on up. */
async function answering(request: FastifyRequest, reply: FastifyReply, work: () => Promise<FastifyReply>) {
  try {
    return await work();
  } catch (error) {
    if (error instanceof AppError && error.status < 500) {
      return sendSci(request, reply, error.status, sciErrorReply(error.message));
    }
    throw error;
  }
}

/** The selector of the job an SCI request creates: its devices that exist, its tags, groups and `all`. */
function selector(sci: SciRequest, known: string[]): TargetSelector {
  const { tags, groups, all } = sci.targets;
  if (known.length === 0 && tags.length === 0 && groups.length === 0 && !all) {
    throw badRequest('No valid target: none of the devices named is a device of this account');
  }
  return {
    ...(known.length > 0 ? { devices: known } : {}),
    ...(tags.length > 0 ? { tags } : {}),
    ...(groups.length > 0 ? { groups } : {}),
    ...(all ? { all } : {}),
  };
}

async function allTargets(store: Store, accountId: number, jobId: number) {
  const targets = [];
  const order = { field: 'device_id', direction: 'asc' } as const;
  for await (const batch of store.streamTargets(jobId, { accountId, query: null, order }))
    targets.push(...batch);
  return targets;
}

/** The `reply` mode a job was created with (an SCI job's payload keeps its attributes). */
function replyModeOf(job: JobDetail): ReplyMode {
  const attributes = (job.payload as { attributes?: { reply?: unknown } } | null)?.attributes;
  const mode = typeof attributes?.reply === 'string' ? attributes.reply.trim().toLowerCase() : 'all';
  return mode === 'errors' || mode === 'none' ? mode : 'all';
}

/** Resolves when the client goes away before its answer was sent. */
function clientGone(reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableEnded) controller.abort();
  });
  return controller.signal;
}

const xmlAnswer = (description: string) => ({
  description,
  content: {
    'application/xml': { schema: Type.String() },
    'application/json': {
      schema: Type.Object({ sci_reply: Type.Object({}, { additionalProperties: true }) }),
    },
  },
});

/**
 * Remote Manager's SCI (CONTRACT §11): `POST /ws/sci` creates a job from an XML request and
 * answers when its devices did (synchronous) or at once with its id; `/ws/sci/{id}` shows it.
 */
export function sciRoutes(authenticator: Authenticator, { store, jobs }: ApiContext) {
  return async (app: FastifyInstance): Promise<void> => {
    app.addHook('onRequest', authHook(authenticator));

    /**
     * Every device's reply: the job's targets in device order, then the device ids the request
     * named (kept in the job's `targets` as submitted) that were no device of the account.
     */
    const deviceReplies = async (job: JobDetail): Promise<DeviceReply[]> => {
      const targets = await allTargets(store, job.customer_id, job.id);
      const targeted = new Set(targets.map((target) => target.device_id));
      const unknown = (job.targets.devices ?? []).filter((id) => !targeted.has(normalizeDeviceId(id)));
      return [...targets.map(targetReply), ...unknown.map(unknownDeviceReply)];
    };

    app.post(
      '/ws/sci',
      {
        config: { xmlBody: true },
        bodyLimit: SCI_BODY_LIMIT_BYTES,
        schema: describeRoute(
          'postSci',
          'sci',
          'An SCI request: creates a job and answers its replies or its id',
          {
            consumes: ['text/xml', 'application/xml'],
            body: Type.String({
              description: '<sci_request version="1.0"><OPERATION …><targets>…</targets>…',
            }),
            response: {
              200: xmlAnswer('synchronous: every device reply'),
              202: xmlAnswer('asynchronous: the job id (also in Location)'),
            },
          },
        ),
      },
      (request, reply) =>
        answering(request, reply, async () => {
          const user = requestUser(request);
          const sci = parseSciRequest(typeof request.body === 'string' ? request.body : '');
          const known = await store.existingDeviceIds(user.account_id, sci.targets.devices);
          const targets = selector(sci, known);
          const named = [...sci.targets.devices, ...sci.targets.malformed];
          const job = await jobs.createJob(
            user.account_id,
            user.username,
            {
              job_type: sci.operation,
              description: `SCI ${sci.operation}`,
              targets,
              payload: { sci: sci.payload, attributes: sci.attributes },
            },
            {
              // every device id the request named, also those that answer 303
              submitted: { ...targets, ...(named.length > 0 ? { devices: named } : {}) },
              ...(sci.allowOffline ? {} : { failOffline: DEVICE_NOT_CONNECTED }),
            },
          );
          request.log.info(
            {
              job: job.id,
              job_type: job.job_type,
              targets: job.target_count,
              account: user.account_id,
              sci: true,
            },
            'job created',
          );
          if (!sci.synchronous) {
            reply.header('Location', `/ws/sci/${job.id}`);
            return sendSci(request, reply, 202, jobIdReply(sci.operation, job.id));
          }
          const gone = clientGone(reply);
          await waitForJob(jobs, user.account_id, job.id, {
            timeoutMs: sci.syncTimeoutSeconds * 1000,
            signal: gone,
          });
          if (gone.aborted) {
            // Nobody to answer (499, "client closed request", for the record): the job goes on.
            request.log.info({ job: job.id, account: user.account_id }, 'SCI client left before the reply');
            return reply.status(499).send();
          }
          const devices = await deviceReplies(job);
          return sendSci(request, reply, 200, sciReply(operationReply(sci.operation, devices, sci.reply)));
        }),
    );

    const findJob = async (request: JobIdRequest) => {
      const jobId = parseJobId(request.params.id);
      const job = await store.getJob(requestUser(request).account_id, jobId);
      if (job === undefined) throw new AppError(404, `Job ${jobId} not found`);
      return job;
    };

    app.get(
      '/ws/sci/:id',
      {
        exposeHeadRoute: false,
        schema: describeRoute(
          'getSciJob',
          'sci',
          "An SCI job's status, and once finished every device's reply",
          {
            params: jobIdParams,
            response: { 200: xmlAnswer('in_progress, or the final status with the replies') },
          },
        ),
      },
      (request: JobIdRequest, reply) =>
        answering(request, reply, async () => {
          const job = await findJob(request);
          const devices = await deviceReplies(job);
          const content = jobStatusReply(job.job_status, () =>
            operationReply(job.job_type, devices, replyModeOf(job)),
          );
          return sendSci(request, reply, 200, content);
        }),
    );

    app.head(
      '/ws/sci/:id',
      {
        // Documented as its own operation (`headSciJob-head`): it answers otherwise than the GET.
        config: { swagger: { exposeHeadRoute: true } },
        schema: describeRoute(
          'headSciJob',
          'sci',
          'Whether an SCI job is done: 202 while it runs, 200 once finished',
          {
            params: jobIdParams,
            response: { 200: { description: 'finished' }, 202: { description: 'still running' } },
          },
        ),
      },
      (request: JobIdRequest, reply) =>
        answering(request, reply, async () => {
          const job = await findJob(request);
          const running = job.job_status === 'new' || job.job_status === 'in_progress';
          return reply.status(running ? 202 : 200).send();
        }),
    );

    app.delete(
      '/ws/sci/:id',
      {
        schema: describeRoute('deleteSciJob', 'sci', 'Delete a finished SCI job (409 while it runs)', {
          params: jobIdParams,
          response: { 200: xmlAnswer('deleted') },
        }),
      },
      (request: JobIdRequest, reply) =>
        answering(request, reply, async () => {
          const jobId = parseJobId(request.params.id);
          const [result] = await jobs.deleteJobs(requestUser(request).account_id, [jobId]);
          if (result !== undefined && !result.ok) throw new AppError(result.status, result.message);
          return sendSci(request, reply, 200, sciReply({ status: 'deleted' }));
        }),
    );
  };
}
