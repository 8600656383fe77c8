import type { FastifyReply } from 'fastify';
import type { ByIdResult } from '../store/store.js';
import { sendError } from './errors.js';

/**
 * The answer of a by-id cancel or delete (CONTRACT §5): 200 with what changed and an `errors`
 * entry per id left alone; but when every id failed with the same status, that status, with one
 * message naming them all (so a single unknown id is a plain 404).
 */
export function sendByIdResults<T>(
  reply: FastifyReply,
  results: readonly ByIdResult<T>[],
  toJson: (value: T) => unknown,
): FastifyReply {
  const failures = results.flatMap((result) => (result.ok ? [] : [result]));
  const first = failures[0];
  if (
    first !== undefined &&
    failures.length === results.length &&
    failures.every((f) => f.status === first.status)
  ) {
    return sendError(
      reply,
      first.status,
      [...new Set(failures.map((failure) => failure.message))].join('; '),
    );
  }
  const list = results.flatMap((result) => (result.ok ? [toJson(result.value)] : []));
  return reply.send({
    count: list.length,
    list,
    ...(failures.length === 0
      ? {}
      : {
          errors: failures.map((failure) => ({
            id: failure.id,
            error_status: failure.status,
            error_message: failure.message,
          })),
        }),
  });
}
