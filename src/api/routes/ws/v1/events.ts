import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../../../../model/error.js';
import { EVENT_TOPICS, type EventTopic } from '../../../../model/event.js';
import { type ApiContext, requestUser } from '../../../context.js';
import { messageJson } from '../../../formats/messages.js';
import { parseJobId, type RawQuery, single } from '../../../params.js';
import { describeRoute, eventStream, eventStreamQuery } from '../../../schemas.js';

/** How often a stream looks for new events, and how often it sends a comment to keep the line open. */
export interface EventStreamTimings {
  pollMs: number;
  heartbeatMs: number;
}

export const EVENT_STREAM_TIMINGS: EventStreamTimings = { pollMs: 250, heartbeatMs: 15_000 };

/** Events read per look: a stream that falls behind catches up in batches of this many. */
const BATCH = 1000;

function parseTopics(text: string | undefined): EventTopic[] {
  if (text === undefined || text.trim() === '') return [...EVENT_TOPICS];
  return [
    ...new Set(
      text.split(',').map((part) => {
        const topic = part.trim().toLowerCase();
        if (!(EVENT_TOPICS as readonly string[]).includes(topic)) {
          throw badRequest(`Invalid topic '${part.trim()}' in topics: expected ${EVENT_TOPICS.join(', ')}`);
        }
        return topic as EventTopic;
      }),
    ),
  ];
}

/**
 * `GET /ws/v1/events`: the account's changes as server-sent events, read from the outbox (so every
 * node streams every change, in commit order). `Last-Event-ID` resumes after that event while it
 * is kept (an hour at least).
 */
export function eventRoutes(
  app: FastifyInstance,
  { store }: ApiContext,
  timings: EventStreamTimings = EVENT_STREAM_TIMINGS,
): void {
  const open = new Set<PassThrough>();
  app.addHook('preClose', async () => {
    for (const stream of open) stream.end();
  });

  app.get(
    '/ws/v1/events',
    {
      schema: describeRoute('eventStream', 'monitors', 'The live stream of changes (server-sent events)', {
        querystring: eventStreamQuery,
        response: { 200: eventStream },
      }),
    },
    async (request, reply) => {
      const accountId = requestUser(request).account_id;
      const raw = request.query as RawQuery;
      const topics = parseTopics(single(raw, 'topics'));
      const jobIdText = single(raw, 'job_id');
      const jobId = jobIdText === undefined || jobIdText.trim() === '' ? undefined : parseJobId(jobIdText);
      const lastEventId = request.headers['last-event-id'];
      const resumed =
        typeof lastEventId === 'string' && lastEventId !== ''
          ? await store.findEvent(accountId, lastEventId)
          : undefined;
      let afterId = resumed ?? (await store.lastEventId());

      const stream = new PassThrough();
      open.add(stream);
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      const close = () => {
        closed = true;
        clearTimeout(timer);
        clearInterval(heartbeat);
        open.delete(stream);
      };
      // fastify destroys the stream when the client goes away.
      stream.on('close', close);
      const heartbeat = setInterval(() => stream.write(': keep-alive\n\n'), timings.heartbeatMs);

      const poll = async () => {
        try {
          for (;;) {
            const events = await store.listEvents({ accountId, afterId, topics, jobId, limit: BATCH });
            if (closed) return;
            for (const event of events) {
              stream.write(
                `event: ${event.topic}\nid: ${event.uuid}\ndata: ${JSON.stringify(messageJson(event))}\n\n`,
              );
            }
            afterId = events.at(-1)?.id ?? afterId;
            if (events.length < BATCH) break;
          }
        } catch (error) {
          request.log.error({ err: error }, 'event stream failed');
          stream.end();
          return;
        }
        if (!closed) timer = setTimeout(poll, timings.pollMs);
      };
      stream.write(
        typeof lastEventId === 'string' && lastEventId !== '' && resumed === undefined
          ? `: Last-Event-ID ${lastEventId} is not kept any more (or unknown): streaming from now\n\n`
          : ': stream open\n\n',
      );
      timer = setTimeout(poll, 0);
      return reply
        .type('text/event-stream; charset=utf-8')
        .header('Cache-Control', 'no-cache')
        .header('X-Accel-Buffering', 'no')
        .send(stream);
    },
  );
}
