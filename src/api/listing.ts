import type { FastifyInstance, FastifyReply, FastifyRequest, RouteGenericInterface } from 'fastify';
import type { TSchema } from 'typebox';
import { jsonArray } from '../model/csv.js';
import { parseQuery, type Query, serializeQuery } from '../query/index.js';
import type {
  CsvRecords,
  CsvRequest,
  JsonPage,
  JsonPageRequest,
  Keyset,
  ListRequest,
  Order,
} from '../store/store.js';
import { requestUser } from './context.js';
import type { CursorBinding, CursorCodec } from './cursor.js';
import { csvStream } from './formats/csv.js';
import { sendJsonList } from './formats/json.js';
import { pageXml } from './formats/xml.js';
import { parseFields, parseOrder, parseSize, type RawQuery, single } from './params.js';
import { type ResourceInfo, toJson } from './resources.js';
import { csv, csvQuery, describeRoute, page, pageQuery } from './schemas.js';

/** How a list or export route is described in the OpenAPI document. */
export interface ListDoc {
  operationId: string;
  tag: 'jobs' | 'devices' | 'groups' | 'monitors';
  summary: string;
  /** The path parameters' schema, when the path has some. */
  params?: TSchema;
}

/** `query` and `orderby` as a list or an export takes them. */
interface Selection {
  queryText: string | undefined;
  query: Query | null;
  order: Order;
  orderText: string | undefined;
}

function parseSelection<T>(resource: ResourceInfo<T>, raw: RawQuery): Selection {
  const queryText = single(raw, 'query');
  const orderText = single(raw, 'orderby');
  return {
    queryText,
    query: parseQuery(queryText, resource.name),
    order: parseOrder(orderText, resource.orderFields, resource.defaultOrder),
    orderText,
  };
}

export interface ListScope {
  accountId: number;
  /** The job whose targets are listed. */
  jobId?: number;
}

/** Which of XML (application/xml, text/xml) and JSON the Accept header prefers; null if neither. */
export function preferredFormat(request: FastifyRequest): 'xml' | 'json' | null {
  const accept = request.headers.accept;
  if (accept === undefined) return null;
  let best: { format: 'xml' | 'json' | null; quality: number } = { format: null, quality: 0 };
  for (const part of accept.split(',')) {
    const [type = '', ...parameters] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    const quality = q === undefined ? 1 : Number(q.slice(2));
    const format =
      type === 'application/xml' || type === 'text/xml' ? 'xml' : type === 'application/json' ? 'json' : null;
    if (format !== null && quality > best.quality) best = { format, quality };
  }
  return best.format;
}

/** `Accept: application/xml` (or text/xml) preferred over JSON. */
export const prefersXml = (request: FastifyRequest): boolean => preferredFormat(request) === 'xml';

/** What a list route pages through: one resource, in one scope. */
export interface PageOptions<T> {
  resource: ResourceInfo<T>;
  cursors: CursorCodec;
  scope: ListScope;
  fetch: (request: ListRequest) => Promise<T[]>;
  /** The page as JSON, encoded by the store (where the page is the load's bulk): else from `fetch`'s items. */
  fetchJson?: (request: JsonPageRequest) => Promise<JsonPage>;
}

/**
 * `GET path` (JSON, or XML when the client prefers it) and `GET path.xml`: one page of a list.
 * `Route` types the request's params, as the path declares them.
 */
export function pageRoutes<Route extends RouteGenericInterface, T>(
  app: FastifyInstance,
  path: string,
  doc: ListDoc & { item: TSchema },
  options: (request: FastifyRequest<Route>) => PageOptions<T>,
): void {
  const list = (xml: boolean) => async (request: FastifyRequest, reply: FastifyReply) =>
    sendPage(request, reply, {
      ...options(request as FastifyRequest<Route>),
      xml: xml || prefersXml(request),
    });
  const parts = { ...(doc.params === undefined ? {} : { params: doc.params }), querystring: pageQuery };
  const xmlPage = { content: { 'application/xml': { schema: { type: 'string' } } } };
  app.get(
    path,
    {
      schema: describeRoute(doc.operationId, doc.tag, doc.summary, {
        ...parts,
        description: 'JSON, or XML when the Accept header prefers application/xml.',
        response: { 200: page(doc.item) },
      }),
    },
    list(false),
  );
  app.get(
    `${path}.xml`,
    {
      schema: describeRoute(`${doc.operationId}Xml`, doc.tag, `${doc.summary} as XML`, {
        ...parts,
        response: { 200: { description: 'the page as XML', ...xmlPage } },
      }),
    },
    list(true),
  );
}

/**
 * One page of a list: parses `query`, `orderby`, `size` and `cursor`, fetches one item more than
 * the page to know whether more follow, and answers the envelope as JSON or XML.
 */
async function sendPage<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  options: PageOptions<T> & { xml: boolean },
): Promise<FastifyReply> {
  const { resource, cursors, scope } = options;
  const raw = request.query as RawQuery;
  const selection = parseSelection(resource, raw);
  const size = parseSize(single(raw, 'size'));
  const binding: CursorBinding = {
    accountId: scope.accountId,
    resource: resource.name,
    jobId: scope.jobId ?? null,
    query: selection.query === null ? '' : serializeQuery(selection.query),
    orderField: selection.order.field,
    direction: selection.order.direction,
  };
  const cursorText = single(raw, 'cursor');
  const after = cursorText === undefined || cursorText === '' ? null : cursors.decode(binding, cursorText);
  const listRequest: ListRequest = {
    accountId: scope.accountId,
    query: selection.query,
    order: selection.order,
    after,
    limit: size,
  };
  /** The cursor and URI of the page after the one ending at `next` (none on the last page). */
  const following = (next: Keyset | null): { cursor?: string; next_uri?: string } => {
    if (next === null) return {};
    const cursor = cursors.encode(binding, next);
    return { cursor, next_uri: nextUri(request, selection, size, cursor) };
  };
  const json = (count: number, next: Keyset | null, list: Uint8Array) =>
    sendJsonList(reply, { count, size, ...following(next) }, list);
  if (!options.xml && options.fetchJson !== undefined) {
    const encoded = await options.fetchJson({
      ...listRequest,
      fields: resource.fields,
      timestamps: resource.timestampFields,
    });
    return json(encoded.count, encoded.next, encoded.json);
  }
  // One item more than the page tells whether more follow.
  const items = await options.fetch({ ...listRequest, limit: size + 1 });
  const list = items.slice(0, size);
  const last = list[list.length - 1];
  const next: Keyset | null =
    items.length > size && last !== undefined
      ? {
          value: ((last as Record<string, unknown>)[selection.order.field] ?? null) as Keyset['value'],
          key: resource.key(last),
        }
      : null;
  if (options.xml) {
    return reply
      .type('application/xml; charset=utf-8')
      .send(pageXml(resource, { size, list, ...following(next) }));
  }
  return json(
    list.length,
    next,
    jsonArray(list.map((item) => toJson(resource, resource.fields, item as object))),
  );
}

function nextUri(request: FastifyRequest, selection: Selection, size: number, cursor: string): string {
  const path = request.url.split('?')[0] ?? '';
  const parameters: [string, string][] = [];
  if (selection.queryText !== undefined && selection.queryText !== '')
    parameters.push(['query', selection.queryText]);
  if (selection.orderText !== undefined && selection.orderText.trim() !== '') {
    parameters.push(['orderby', `${selection.order.field} ${selection.order.direction}`]);
  }
  parameters.push(['size', String(size)], ['cursor', cursor]);
  return `${path}?${parameters.map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('&')}`;
}

/** A whole export as CSV: `query`, `orderby` and `fields`, streamed batch by batch from the store. */
export async function sendCsv<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  options: {
    resource: ResourceInfo<T>;
    accountId: number;
    records: (request: CsvRequest) => CsvRecords;
  },
): Promise<FastifyReply> {
  const raw = request.query as RawQuery;
  const { resource } = options;
  const selection = parseSelection(resource, raw);
  const fields = parseFields(single(raw, 'fields'), resource.fields, resource.csvFields);
  const body = await csvStream(
    fields,
    options.records({
      accountId: options.accountId,
      query: selection.query,
      order: selection.order,
      fields,
      timestamps: resource.timestampFields,
    }),
  );
  return reply.type('text/csv; charset=utf-8').send(body);
}

/** `GET path`: all of the account's items as CSV. */
export function csvRoute<T>(
  app: FastifyInstance,
  path: string,
  doc: ListDoc,
  resource: ResourceInfo<T>,
  records: (request: CsvRequest) => CsvRecords,
): void {
  app.get(path, { schema: csvSchema(doc) }, async (request, reply) =>
    sendCsv(request, reply, { resource, accountId: requestUser(request).account_id, records }),
  );
}

/** The schema of a CSV export route. */
export const csvSchema = (doc: ListDoc) =>
  describeRoute(doc.operationId, doc.tag, doc.summary, {
    ...(doc.params === undefined ? {} : { params: doc.params }),
    querystring: csvQuery,
    response: { 200: csv },
  });
