import { Readable } from 'node:stream';
import type { FastifyReply } from 'fastify';

/**
 * Answers `{ ...envelope, list }`, `list` given as the UTF-8 of a JSON array (src/model/csv.ts
 * jsonArray, or a page the store encoded), sent as it is: copying a page into one buffer with the
 * envelope cost ~1 ms of page faults per 350 kB (fresh memory) here.
 */
export function sendJsonList(
  reply: FastifyReply,
  envelope: Record<string, unknown>,
  list: Uint8Array,
): FastifyReply {
  const head = JSON.stringify(envelope);
  const start = Buffer.from(`${head.slice(0, -1)}${head === '{}' ? '' : ','}"list":`);
  const end = Buffer.from('}');
  return reply
    .type('application/json; charset=utf-8')
    .header('content-length', start.length + list.length + end.length)
    .send(Readable.from([start, list, end], { objectMode: false }));
}
